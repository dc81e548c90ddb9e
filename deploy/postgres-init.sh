#!/bin/sh
# First start of the PostgreSQL volume: one role and database for Nurture, one role for Temporal (its databases
# are created by the temporal-schema job), with the passwords from .env.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE nurture LOGIN PASSWORD '${NURTURE_DB_PASSWORD}';
CREATE DATABASE nurture OWNER nurture;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD '${TEMPORAL_DB_PASSWORD}';
SQL
