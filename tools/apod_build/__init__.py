"""apod_build: the project's images, built side by side from the image graph that
images/build.toml and the Dockerfiles describe (standard library only: `make images` and
`make demo` need no virtualenv).

    PYTHONPATH=tools python3 -m apod_build                    every image (make images)
    PYTHONPATH=tools python3 -m apod_build load airflow       these, and what they build FROM
    PYTHONPATH=tools python3 -m apod_build --tags [NAME...]   `<name> <tag>`, nothing built
    PYTHONPATH=tools python3 -m apod_build --print [NAME...]  the graph as JSON, nothing built
    PYTHONPATH=tools python3 -m apod_build --tag TAG NAME     one image under another tag
    PYTHONPATH=tools python3 -m apod_build --announce DIR NAME...
                                        DIR/<name> is created as each image is built
    PYTHONPATH=tools python3 -m apod_build --report PATH ...  the JSON build report there

Every images/<name>/Dockerfile is an image, built with the repository root as context and
tagged as images/build.toml's [tags] say (apod-<name>:<VERSION>; apod-postgres:<PG_MAJOR>,
or APOD_LOCAL_POSTGRES), with its build arguments ([args]: VERSION, PG_MAJOR, STEP the
folder's name), its labels ([labels]: title, version, licenses, source, and a workspace
package's description) and apod.pipeline.content-tag, the tag its inputs give it
(apod_build.content_tags), which the Kubernetes tooling checks an image against before it
deploys it.

An image is built once the project images it builds FROM are, and the bases whose build
argument it names (@python, @debian: made or found by scripts/ensure-base-image.sh, so an
image on the Debian base builds while the Python base is still being made); the others
build side by side, APOD_BUILD_JOBS at a time (default: images/build.toml's), in the order
asked for. BuildKit when there is one, else the plain builder (images/build.toml's
[builders]; APOD_BUILDKIT=0 forces it). Each build's output goes to
.cache/build-logs/<name>.log (base-<name>.log for a base); what the run did, node by node,
to the JSON build report (apod_build.report), which the cold bench reads.

Settings: APOD_BUILD_JOBS, APOD_BUILDKIT=0, PYTHON_IMAGE / DEBIAN_IMAGE (a base of your
own), APOD_LOCAL_POSTGRES (Postgres's tag). Exit codes: 0 done, 1 a build failed or an
input cannot be read, 2 usage (an unknown image, a missing parent, a cycle).

Modules: graph (the data resolved), dockerfile (reading a Dockerfile), labels,
content_tags, builder (one node), scheduler (side by side), report (the JSON), cli.
"""
