"""The one error of the build's inputs."""


class InputError(Exception):
    """The build cannot be planned as asked: images/build.toml, a Dockerfile or a file it
    copies cannot be read as the build would read it, an image is missing, or the images
    build FROM each other in a cycle."""
