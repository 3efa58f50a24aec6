"""A real uvicorn server for tests that need real sockets and real concurrency."""

from __future__ import annotations

import socket
import threading

import uvicorn


class ServerThread:
    """uvicorn on 127.0.0.1 in a background thread, listening before it starts serving."""

    def __init__(self, app, backlog: int = 1024):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
