"""A real SMTP server on loopback (aiosmtpd) that keeps what arrives, and can be told to refuse or hang up."""
import email
import email.policy
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


@dataclass
class SmtpServer:
    host: str
    port: int
    #: What arrived, parsed (email.message.EmailMessage), with the envelope's recipients.
    messages: list = field(default_factory=list)
    #: Answers to give the next DATA commands instead of taking the message: "451 ...", "550 ...", or "drop"
    #: (close the connection before answering: the message may or may not have arrived).
    script: list = field(default_factory=list)

    def settings(self) -> dict:
        """The app settings that send through this server."""
        return {"SMTP_HOST": self.host, "SMTP_PORT": self.port, "SMTP_TLS": "none", "SMTP_TIMEOUT": 5,
                "MAIL_FROM": "Bargaining Certificate <certificate@union.example>"}


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.script:
            answer = self.server.script.pop(0)
            if answer == "drop":
                smtp.transport.close()
                return "250 never heard"
            return answer
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.server.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def start_smtp_server() -> tuple[SmtpServer, Controller]:
    """Start the server on a free loopback port; return it and its controller (call .stop())."""
    import socket

    with socket.socket() as probe:  # aiosmtpd's start-up check connects to the port it was given: not 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SmtpServer(host="127.0.0.1", port=port)
    controller = Controller(_Handler(server), hostname="127.0.0.1", port=port)
    controller.start()
    return server, controller
