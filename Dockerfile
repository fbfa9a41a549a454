# The image every Airflow service of docker-compose.yaml runs: the official Airflow 3.3.2 image
# plus this project's pinned dependencies (installed together so pip keeps Airflow's version).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/patchflow/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" \
      -r /opt/patchflow/requirements.txt -c /opt/patchflow/constraints.txt
