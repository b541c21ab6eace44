-- One PostgreSQL server, two databases: Dagster's storage and ISKA's own data.
CREATE DATABASE dagster;
CREATE DATABASE iska;
