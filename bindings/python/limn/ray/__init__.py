"""limn on a Ray cluster (``pip install 'limn[ray]'``): the `limn serve` app as a Ray Serve
application, and folder-scale batch jobs on Ray Data. limn adds no cluster code of its own: Ray
places the replicas and actors, balances, queues, restarts and scales them.

Online, the same FastAPI app as ``limn serve`` (limn.serve.create_app) runs in every replica, which
loads the models once::

    limn serve --ray --replicas 2 --model dctnet-anime          # starts or joins a cluster
    serve run limn.ray:app model=dctnet-anime replicas=auto     # Ray's own command
    serve deploy config.yaml                                    # import_path: limn.ray:app

``app`` is a Ray Serve application builder: it takes the options of ``limn serve`` by their long
names (``model``, ``queue``, ``replicas``, ...; lists for repeatable ones) and returns the
application. ``deployment_options`` says what each option becomes in Ray.

Offline, ``limn cartoonize IN -o OUT --ray [ADDR] [--replicas N]`` (and restore-faces) plans the
outputs exactly as the local command does, runs the images through Ray Data actors that load the
model once each, and writes every result atomically (limn.ray.batch).
"""

__all__ = ["LimnServer", "app", "build_app", "deployment_options", "run_cli"]


def __getattr__(name: str):
    # Ray Serve and FastAPI load only when the online side is used (`limn.ray:app`, limn serve
    # --ray), not for a batch job (limn.ray.batch), which needs Ray Data alone.
    if name in __all__:
        from . import _serve

        return getattr(_serve, name)
    raise AttributeError(f"module 'limn.ray' has no attribute {name!r}")
