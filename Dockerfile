# One image for every Potluck process (API, relay, workers); the command picks the role.
# Build: docker build -t potluck .    (see docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --no-create-home --uid 10001 potluck

USER potluck
EXPOSE 8000
# The API without the embedded relay and workers: run those as their own processes.
CMD ["potluck", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-embedded-workers"]
