# One image for every ISKA process: code server, webserver, daemon, API, simulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    ISKA_DATA_DIR=/data

WORKDIR /opt/iska
COPY pyproject.toml README.md ./
COPY iska_pipelines ./iska_pipelines
# the celery extra: the same image runs the Celery workers (docker-compose.yml, sms-worker)
RUN pip install --no-cache-dir '.[celery]' \
 && useradd --create-home --uid 10001 iska \
 && mkdir -p "$DAGSTER_HOME/storage" /data \
 && chown -R iska:iska "$DAGSTER_HOME" /data

COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
COPY deploy/celery.yaml /opt/iska/deploy/celery.yaml

USER iska
EXPOSE 3000 4000 8000 8010
CMD ["iska", "--help"]
