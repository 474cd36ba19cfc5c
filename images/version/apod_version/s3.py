"""S3-compatible DVC remotes (dvc-s3): the credentials, the standard way, and a pre-flight
that says plainly why the store cannot be used before anything is added or committed.

The endpoint, the key and the secret come from the standard AWS_* variables (or their
*_FILE forms, read here), from AWS_SHARED_CREDENTIALS_FILE / a profile, or from the
remote's own options in the repository's DVC config; never from a command line. What is
committed names only `s3://bucket/prefix` (remote.configure_new_repo).
"""

import configparser
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from apod_common import exit_codes, redaction, settings
from apod_common.errors import StepError

log = logging.getLogger("version")

ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name
SESSION_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105 - a variable's name
# Read from `<NAME>_FILE` when that is set instead (Docker secrets, Kubernetes Secret files).
FILE_FORMS = (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
SHARED_CREDENTIALS = "AWS_SHARED_CREDENTIALS_FILE"
# Keys of a shared credentials file (and of a DVC remote section) that are secret.
SECRET_OPTIONS = (
    "aws_secret_access_key",
    "aws_session_token",
    "secret_access_key",
    "session_token",
)
# Without a key, botocore would ask the EC2 metadata address (slow, and not ours to ask)
# unless told not to; AWS_EC2_METADATA_DISABLED=false in the environment turns it back on.
METADATA_DISABLED = "AWS_EC2_METADATA_DISABLED"
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # without slashes at either end; "" for the bucket's root

    @classmethod
    def of(cls, url: str) -> "Location":
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise StepError(f"DVC remote URL {url!r} names no bucket", exit_codes.BAD_INPUT)
        return cls(bucket, prefix.strip("/"))


def credentials_environment() -> dict[str, str]:
    """The process environment with the AWS_* secrets read from their *_FILE forms, and
    every secret they hold (a shared credentials file's too) handed to the redactor."""
    environ = dict(os.environ)
    for name in FILE_FORMS:
        value = settings.secret(name) if name != ACCESS_KEY_ID else settings.env_or_file(name)
        if value:
            environ[name] = value
        # A child reads the value; the path is of no use to it and names a secret.
        environ.pop(f"{name}_FILE", None)
    environ.setdefault(METADATA_DISABLED, "true")
    remember_shared_credentials(environ.get(SHARED_CREDENTIALS))
    return environ


def remember_shared_credentials(path: str | None) -> None:
    """The secrets of an AWS shared credentials file go to the redactor, as *_FILE ones do."""
    if not path:
        return
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.expanduser(path), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return  # unreadable: botocore (or the pre-flight) reports it
    for section in parser.sections():
        redaction.remember(*(parser.get(section, key, fallback=None) for key in SECRET_OPTIONS))


def endpoint(options: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """Where DVC will connect: the remote's `endpointurl`, else the standard variables."""
    if options.get("endpointurl"):
        return options["endpointurl"]
    return next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)


def _client(options: Mapping[str, str], environ: Mapping[str, str], url: str):
    import botocore.session
    from botocore.config import Config

    session = botocore.session.Session(profile=options.get("profile") or environ.get("AWS_PROFILE"))
    if options.get("credentialpath"):
        session.set_config_variable("credentials_file", options["credentialpath"])
    key = options.get("access_key_id") or environ.get(ACCESS_KEY_ID)
    secret = options.get("secret_access_key") or environ.get(SECRET_ACCESS_KEY)
    token = options.get("session_token") or environ.get(SESSION_TOKEN)
    explicit = {"aws_access_key_id": key, "aws_secret_access_key": secret} if key else {}
    if explicit and token:
        explicit["aws_session_token"] = token
    return session.create_client(
        "s3",
        endpoint_url=url,
        region_name=options.get("region") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
        **explicit,
    )


def check_reachable(
    name: str, url: str, options: Mapping[str, str], environ: Mapping[str, str]
) -> None:
    """One signed listing of the remote's prefix: the store answers, the key is known and
    may read the bucket, the bucket exists. Otherwise a StepError that says which, and
    never the key itself: exit 5 when a later run may succeed as it is (the store is down
    or lost its bucket), 4 when the credentials must change first."""
    import botocore.exceptions as errors

    where = Location.of(url)
    target = endpoint(options, environ)
    shown = target or "the AWS default endpoint (no AWS_ENDPOINT_URL_S3 set)"
    remember_shared_credentials(options.get("credentialpath"))
    redaction.remember(*(options.get(key) for key in SECRET_OPTIONS))
    prefix = {"Prefix": f"{where.prefix}/"} if where.prefix else {}

    def failed(why: str, code: int) -> StepError:
        return StepError(f"DVC remote {name!r} ({url}) is not usable: {why}", code)

    try:
        client = _client(options, environ, target)
        client.list_objects_v2(Bucket=where.bucket, MaxKeys=1, **prefix)
    except errors.NoCredentialsError as exc:
        raise failed(
            f"no S3 credentials: set {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY} (or their "
            f"_FILE forms, or {SHARED_CREDENTIALS})",
            exit_codes.UPSTREAM_REFUSED,
        ) from exc
    except (errors.ConnectionError, errors.HTTPClientError) as exc:
        # Refused, unresolvable, timed out, or the connection dropped mid-answer.
        raise failed(
            f"no S3 endpoint answers at {shown} (object store down or unreachable?)",
            exit_codes.UPSTREAM_UNAVAILABLE,
        ) from exc
    except errors.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise _refused(failed, code, status, where.bucket, shown) from exc
    except (errors.PartialCredentialsError, errors.ProfileNotFound) as exc:
        raise failed(f"S3 credentials incomplete: {exc}", exit_codes.UPSTREAM_REFUSED) from exc
    except errors.BotoCoreError as exc:
        raise failed(f"S3 client error: {exc}", exit_codes.UPSTREAM_UNAVAILABLE) from exc
    log.info("DVC remote %r: bucket %s answers at %s", name, where.bucket, shown)


def _refused(failed, code: str, status: int | None, bucket: str, shown: str) -> StepError:
    refused = exit_codes.UPSTREAM_REFUSED
    if code == "SignatureDoesNotMatch":
        return failed(f"{shown} says the S3 secret key is wrong for this access key", refused)
    if code in ("InvalidAccessKeyId", "InvalidToken", "ExpiredToken"):
        return failed(f"{shown} does not know this S3 access key ({code})", refused)
    if code == "AccessDenied" or status == 403:
        return failed(f"the S3 key may not list bucket {bucket} at {shown} ({code})", refused)
    if code == "NoSuchBucket" or status == 404:
        return failed(
            f"bucket {bucket} does not exist at {shown} (the object store makes it when it "
            "starts: restart it, or create the bucket)",
            exit_codes.UPSTREAM_UNAVAILABLE,
        )
    return failed(
        f"{shown} answered {status} {code or 'with an error'}", exit_codes.UPSTREAM_UNAVAILABLE
    )
