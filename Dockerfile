FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files with hashed names and compressed copies, served by the application.
RUN python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
# prepare: one clear line (and exit 2) when the database cannot be reached or does not
# exist, the migrations, then a first admin key when none exists, framed, in the log.
CMD ["sh", "-c", "python manage.py prepare && exec uvicorn llmwrapper.asgi:application --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2} --no-access-log --lifespan off"]
