# stashplan operator and Job image: Python slim plus the database clients the providers shell out to.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client mariadb-client redis-tools sqlite3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY stashplan ./stashplan
COPY providers ./providers
COPY specs ./specs
# specs/ (addons, CRDs, deploy manifests) is not package data: the loaders look for it next to the
# package (stashplan/api/addons.py: <package>/../../specs, stashplan/operator/install.py: <package>/../../specs).
RUN pip install --no-cache-dir . \
 && purelib="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && ln -s /src/specs "$purelib/specs" && ln -s /src/specs "$purelib/../specs" \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp stashplan

ENV STASHPLAN_CLUSTER=kube \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["stashplan"]
CMD ["apply", "--watch", "--cluster=kube"]
