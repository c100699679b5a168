#!/bin/sh
# docker/secrets.sh: the `secrets` one-shot of docker-compose.yml. Writes the stack's secrets
# into the secrets volume (SECRETS_DIR, /run/dozen-secrets) as one file each, which the
# other containers read through *_FILE variables (POSTGRES_PASSWORD_FILE for the postgres
# image, DATABASE_URL_FILE and ADMIN_TOKEN_FILE for dozen, GF_SECURITY_ADMIN_PASSWORD__FILE
# for Grafana):
#
#   postgres_password  POSTGRES_PASSWORD when set (.env), else kept from an earlier start,
#                      else generated (32 hex digits)
#   admin_token        ADMIN_TOKEN likewise
#   grafana_password   GRAFANA_ADMIN_PASSWORD likewise
#   database_url       postgresql://POSTGRES_USER:<password>@postgres:5432/POSTGRES_DB
#
# Files are mode 0444 in a directory only root may write: readable by the containers'
# non-root users (postgres, dozen, grafana), writable by nobody but this one-shot. Runs as
# root in the postgres image (sh, od, tr). Exits non-zero with a message for a bad value.
set -eu

dir=${SECRETS_DIR:-/run/dozen-secrets}
user=${POSTGRES_USER:-dozen}
db=${POSTGRES_DB:-dozen}

fail() { printf 'secrets: %s\n' "$*" >&2; exit 1; }

# 16 random bytes as 32 hex digits: safe inside a URL and a shell word.
generate() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# put NAME VALUE: writes VALUE (or the kept one, or a new one when VALUE is empty) to
# dir/NAME atomically.
put() {
    name=$1 value=$2
    if [ -z "$value" ]; then
        if [ -s "$dir/$name" ]; then
            chmod 0444 "$dir/$name"
            return 0
        fi
        value=$(generate)
        [ ${#value} -eq 32 ] || fail "could not read /dev/urandom"
        printf 'secrets: generated %s\n' "$name"
    fi
    printf '%s\n' "$value" >"$dir/$name.new"
    chmod 0444 "$dir/$name.new"
    mv -f "$dir/$name.new" "$dir/$name"
}

case ${POSTGRES_PASSWORD:-} in
*[!A-Za-z0-9_-]*) fail "POSTGRES_PASSWORD: use letters, digits, '-' and '_' only (it goes into a URL)" ;;
esac
case $user$db in
*[!A-Za-z0-9_-]*) fail "POSTGRES_USER and POSTGRES_DB: use letters, digits, '-' and '_' only" ;;
esac
if [ -n "${ADMIN_TOKEN:-}" ] && [ ${#ADMIN_TOKEN} -lt 16 ]; then
    fail "ADMIN_TOKEN: must be at least 16 characters"
fi

umask 022
mkdir -p "$dir"
chmod 0755 "$dir"
put postgres_password "${POSTGRES_PASSWORD:-}"
put admin_token "${ADMIN_TOKEN:-}"
put grafana_password "${GRAFANA_ADMIN_PASSWORD:-}"
put database_url "postgresql://$user:$(cat "$dir/postgres_password")@postgres:5432/$db"
printf 'secrets: ready in %s\n' "$dir"
