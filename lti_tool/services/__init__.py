"""Services hold the rules; they flush and never commit (the request or CLI boundary commits once)."""
