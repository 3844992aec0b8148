"""The LTI adapter: the only package that knows claim URIs and pylti1p3."""
