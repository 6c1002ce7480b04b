/* The numbered migrations of schema/, embedded at build time (embed_schema.cmake). */
#ifndef CL_SCHEMA_H
#define CL_SCHEMA_H

typedef struct {
  const char *name; /* file name, e.g. "0001_init.sql"; sorted */
  const char *sql;
} cl_schema_migration;

extern const cl_schema_migration cl_schema_migrations[];
extern const int cl_schema_migration_count;

#endif
