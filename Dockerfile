# multibalance: one image for the monitor, the web dashboard and the CLI.
#   docker build -t multibalance .
#   docker run --rm -v "$PWD/config:/config" multibalance multibalance --config /config
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BALANCES_CONFIG=/config
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY bot ./bot
COPY web ./web
COPY scripts ./scripts
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 multibalance
USER multibalance
EXPOSE 5000 9478
CMD ["multibalance-monitor", "--config", "/config", "--metrics-host", "0.0.0.0"]
