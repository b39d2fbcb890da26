"""The one door to S3-compatible object stores (AWS S3, MinIO, Ceph, ...), through boto3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargeback.errors import ChargebackError


class S3Error(ChargebackError, RuntimeError):
    """An S3 request failed; the message names the bucket and key."""

    code = "s3.failed"


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` split into its parts."""

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        """The object key of ``name`` below the prefix."""
        return f"{self.prefix.rstrip('/')}/{name}" if self.prefix else name


def parse_s3_url(url: str) -> S3Location:
    """Parse ``s3://bucket[/prefix]``."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an S3 URL (s3://bucket/prefix): {url}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URL without a bucket: {url}")
    return S3Location(bucket, prefix.strip("/"))


def make_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    """A boto3 S3 client; path-style addressing so that any S3-compatible store works."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def put_bytes(
    client: Any, location: S3Location, name: str, body: bytes, *, content_type: str, sha256: str | None = None
) -> str:
    """Write one object (with its SHA-256 as metadata when given); return its ``s3://`` URL."""
    from botocore.exceptions import BotoCoreError, ClientError

    key = location.key(name)
    extra = {"Metadata": {"sha256": sha256}} if sha256 else {}
    try:
        client.put_object(Bucket=location.bucket, Key=key, Body=body, ContentType=content_type, **extra)
    except (BotoCoreError, ClientError) as exc:
        raise S3Error(f"cannot write s3://{location.bucket}/{key}: {reason(exc)}") from exc
    return f"s3://{location.bucket}/{key}"


def existing_sha256(client: Any, location: S3Location, name: str) -> str | None:
    """The SHA-256 of the object at ``name`` (computed if it has no such metadata), None if absent."""
    import hashlib

    from botocore.exceptions import BotoCoreError, ClientError

    key = location.key(name)
    try:
        head = client.head_object(Bucket=location.bucket, Key=key)
        known = head.get("Metadata", {}).get("sha256")
        if known:
            return str(known)
        body = client.get_object(Bucket=location.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise S3Error(f"cannot read s3://{location.bucket}/{key}: {reason(exc)}") from exc
    except BotoCoreError as exc:
        raise S3Error(f"cannot read s3://{location.bucket}/{key}: {reason(exc)}") from exc
    return hashlib.sha256(body).hexdigest()


def reason(exc: Exception) -> str:
    """Why an S3 request failed, in a few words: an endpoint that cannot be reached, or the store's
    own error code and message."""
    from urllib.parse import urlsplit

    from botocore.exceptions import ClientError, EndpointConnectionError

    if isinstance(exc, EndpointConnectionError):
        url = urlsplit(str(exc.kwargs.get("endpoint_url", "")))
        return f"the S3 endpoint {url.scheme}://{url.netloc} cannot be reached"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')} ({error.get('Message', '').rstrip('.')})"
    return str(exc).rstrip(".")
