"""`limn serve`: the web service (FastAPI and uvicorn; ``pip install 'limn[serve]'``).

    from limn.serve import ServeConfig, create_app
    app = create_app(ServeConfig(models=["classical-cartoon.pt"], queue=8, concurrency=2))

serves the /v1 API, async jobs, the Open Inference Protocol (/v2), health, metrics and the web page
at ``/``; ``limn serve --help`` runs it (see cli.py).
"""

from .app import create_app
from .config import ServeConfig
from .service import ApiError, LoadedModel, Service

__all__ = ["create_app", "ServeConfig", "Service", "LoadedModel", "ApiError"]
