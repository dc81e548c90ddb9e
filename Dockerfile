# One image for every Nurture process: `nurture web` (the default), `nurture worker`, `nurture migrate`.
# Built in stages so the image holds the installed wheel and nothing of the build: no Node, no sources.

# 1. Front-end assets from the npm registry, pinned by package-lock.json (htmx, Swagger UI).
FROM node:20-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --silent

# 2. The wheel: Python packages plus templates, examples and htmx as package data (setup.py puts them in).
FROM python:3.11-slim AS wheel
WORKDIR /src
RUN pip install --no-cache-dir build
COPY pyproject.toml setup.py MANIFEST.in README.md constraints.txt package.json package-lock.json ./
COPY engine ./engine
COPY store ./store
COPY connectors ./connectors
COPY workflows ./workflows
COPY designer ./designer
COPY nurture ./nurture
COPY templates ./templates
COPY examples ./examples
COPY --from=assets /src/node_modules/htmx.org/dist/htmx.min.js ./node_modules/htmx.org/dist/htmx.min.js
COPY --from=assets /src/node_modules/swagger-ui-dist ./node_modules/swagger-ui-dist
RUN python -m build --wheel --outdir wheels .

# 3. The runtime: the wheel installed with pinned dependencies, run as an unprivileged user.
FROM python:3.11-slim
COPY --from=wheel /src/wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt "$(ls /wheels/nurture-*.whl)[postgres]" \
    && rm -rf /wheels /tmp/constraints.txt \
    && useradd --create-home --uid 10001 nurture
USER nurture
WORKDIR /home/nurture
ENV NURTURE_WEB_HOST=0.0.0.0 \
    NURTURE_DATA_DIR=/home/nurture/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=4s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["nurture", "web"]
