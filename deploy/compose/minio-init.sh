#!/bin/sh
# Run once by docker-compose.yml's minio-init service (MinIO's client image): creates the exports
# bucket and a login for chargeback that may only list the bucket and read and write objects in it
# (deploy/compose/exports-policy.json) -- never delete, never touch another bucket, never
# administer the store. Secrets come from files (Docker secrets), not from the command line.
set -eu

bucket=${MINIO_INIT_BUCKET:-chargeback-exports}
login=${MINIO_INIT_LOGIN:-chargeback}
root_user=$(cat /run/secrets/minio_root_user)
root_password=$(cat /run/secrets/minio_root_password)
secret=$(cat /run/secrets/s3_secret_access_key)

export MC_HOST_store="http://${root_user}:${root_password}@minio:9000"
mc mb --ignore-existing "store/$bucket"
sed "s/BUCKET/$bucket/g" /init/exports-policy.json > /tmp/exports-policy.json
mc admin policy create store chargeback-exports /tmp/exports-policy.json
mc admin user add store "$login" "$secret"
if ! mc admin user info store "$login" | grep -q chargeback-exports; then
  mc admin policy attach store chargeback-exports --user "$login"
fi
echo "minio-init: bucket $bucket; login $login may list it and read and write objects in it"
