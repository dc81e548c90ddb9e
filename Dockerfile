# One image for the web app and the worker; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY engine ./engine
COPY workflows ./workflows
COPY designer ./designer
COPY connectors ./connectors
COPY store ./store
COPY nurture ./nurture
COPY templates ./templates
COPY examples ./examples
RUN pip install --no-cache-dir -c constraints.txt -e '.[postgres]'
ENV NURTURE_WEB_HOST=0.0.0.0
EXPOSE 8000
CMD ["nurture", "web"]
