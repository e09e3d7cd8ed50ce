FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py create_admin_key --if-none && exec uvicorn llmwrapper.asgi:application --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2} --no-access-log --lifespan off"]
