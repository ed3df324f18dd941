"""TestbedOS Python SDK: drive a testbedos-server from a script or a
notebook, with the standard library only.

    import testbedos
    c = testbedos.connect()                  # the local socket, else localhost:3355
    c.create_deployment("lab", "/srv/labs/lab")
    c.run("lab", "generate-artefacts")
    c.run("lab", "up", on_line=print)
    c.exec("lab", "web", ["ping", "-c", "1", "10.0.0.20"])
    c.set_impairment("lab", "web", "eth0", delay_ms=50)
    pcap = c.capture("lab", "web", "eth0", seconds=3, filter="icmp")
    c.run("lab", "down")

Every route of the server's OpenAPI document has a method here; errors are
APIError with the HTTP status.
"""

from ._transport import APIError, WebSocket
from .client import DEFAULT_SOCKET, DEFAULT_URL, Client, connect, local_token, pcap_packets, wait_for

__all__ = ["APIError", "Client", "WebSocket", "connect", "local_token", "pcap_packets", "wait_for", "DEFAULT_SOCKET", "DEFAULT_URL"]
__version__ = "1"
