"""`gemb2 serve`: the resident process. Models stay loaded; HTTP on loopback answers embeddings and searches.

    batcher.py   one worker thread per model; requests that arrive together are embedded in one `encode` call
    models.py    the models a server may use (an allow-list), loaded at start or on first use
    inputs.py    request JSON -> items of parts (text, and base64 media decoded by gemb2's own loaders)
    app.py       the Starlette app: /v1/embeddings, /v1/search, /v1/models, /health; limits; errors as JSON
    server.py    uvicorn on a socket we bind (port 0: a free one, its URL printed), stopped cleanly by signals
    client.py    what `gemb2 query --server URL` sends, and its fallback to the in-process path

The HTTP stack is uvicorn (ASGI server, h11) + starlette (routing, requests, responses): small, well kept, and
without pydantic; installed by the `serve` extra. Nothing here is imported by the rest of gemb2.
"""
