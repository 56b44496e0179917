"""ws-analyzer: offline analysis of WebSocket captures (HAR, pcap, pcapng)."""

__version__ = "0.1.0"
