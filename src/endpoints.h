/* endpoints.h: the table of endpoints and their fields (endpoints.c), which validation, encoding and request
   building read. Builds on nothing of ours. */
#ifndef SM_ENDPOINTS_H
#define SM_ENDPOINTS_H

#include "compat.h"   /* lua.h, lauxlib.h, and on LuaJIT the 5.4 API used here */

enum sm_ftype {
  SM_T_STRING, SM_T_E164, SM_T_INT, SM_T_BOOL, SM_T_OBJECT, SM_T_EVENTS, SM_T_ENUM, SM_T_URL,
  SM_T_COUNTRY, SM_T_DATE, SM_T_TIME, SM_T_TZ, SM_T_BASE64, SM_T_FORBIDDEN
};

#define SM_REQUIRED  1u   /* must be present */
#define SM_NULLABLE  2u   /* core.null (JSON null) accepted */
#define SM_SECRET    4u   /* a credential: its value is never shown in a message */

/* cross-field rules */
enum sm_xcheck { SM_X_NONE, SM_X_SCHEDULE, SM_X_PROVISION };

typedef struct sm_field {
  const char *name;
  int type;                   /* enum sm_ftype */
  unsigned flags;
  long long min, max;         /* string: byte lengths; integer: value range */
  const char *const *choices; /* SM_T_ENUM: NULL-terminated */
  const char *alias;          /* another spelling the API uses elsewhere, taken and sent as `name`, or NULL */
} sm_field;

typedef struct sm_endpoint {
  const char *name;           /* "calls.create" */
  const char *method;         /* "GET", "POST", "PATCH", "DELETE" */
  const char *path;           /* template: "/v1/calls/{callId}" */
  const char *arg;            /* the path argument's name, or NULL */
  int arg_e164;               /* the path argument is an E.164 phone number */
  int body;                   /* params go in a JSON body (POST/PATCH), else in the query */
  int xcheck;                 /* enum sm_xcheck */
  const sm_field *fields;     /* terminated by { NULL } */
} sm_endpoint;

const sm_endpoint *sm_endpoint_find(const char *name);
const sm_endpoint *sm_endpoint_at(int i);   /* NULL past the end */
const sm_field *sm_endpoint_field(const sm_endpoint *ep, const char *name);   /* NULL: not declared */
/* the field called name or spelt name (its alias), or NULL; *alias: it was the alias */
const sm_field *sm_endpoint_spelling(const sm_endpoint *ep, const char *name, int *alias);
void sm_push_endpoints(lua_State *L);       /* core.endpoints */

#endif
