"""Running the web app on waitress, a production WSGI server (not Flask's development server)."""

from __future__ import annotations

from waitress import serve as waitress_serve

from . import create_app

THREADS = 8


def serve(index_root: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the search page and API for the index at `index_root` until interrupted."""
    app = create_app(index_root)
    print(f"Midashi: serving {index_root} on http://{host}:{port}/", flush=True)
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="midashi")
