# The crmstream worker image used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY crmstream ./crmstream
COPY streams ./streams
COPY handlers ./handlers
COPY rules ./rules
COPY schemas ./schemas
COPY console ./console
COPY storefront ./storefront
COPY devstack ./devstack
RUN pip install . && useradd --system --home /app crmstream && mkdir -p /var/lib/crmstream \
    && chown crmstream /var/lib/crmstream
USER crmstream
ENV CRMSTREAM_WORKER_DATA_DIR=/var/lib/crmstream/faust

EXPOSE 6066 6070
ENTRYPOINT ["crmstream"]
CMD ["worker"]
