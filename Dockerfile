# The Estuary image: `estuary operator` (the default), `estuary agent` (the node agent's
# DaemonSet) and `estuary portal` (the web portal) from one image. Build from the repository root:
#   docker build -t estuary:dev .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# With the portal extra: the same image serves `estuary portal` (the chart's optional Deployment).
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install ".[portal]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it (the chart runs 10001).
RUN groupadd --system --gid 10001 estuary \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin estuary
USER 10001:10001
ENTRYPOINT ["estuary"]
CMD ["operator"]
