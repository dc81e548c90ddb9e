"""The data floor: database, migrations, tables and every SQL statement. Imports only `engine` and settings."""
