"""LaunchError: a refused LTI request, with words an admin can act on."""


class LaunchError(Exception):
    """A login, launch or registration the tool refuses.

    `reason` is a short code for logs and tests; `message` tells an admin what was wrong and what to do.
    """

    def __init__(self, reason: str, message: str, *, status: int = 400, platform: str | None = None,
                 retry_url: str | None = None, client_id: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.platform = platform
        #: Where the user can start over in a new window (when the iframe lost its cookies).
        self.retry_url = retry_url
        #: The client id the request named, when known (the launch log finds the registration by it).
        self.client_id = client_id
