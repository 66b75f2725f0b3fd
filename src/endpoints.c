/* endpoints.c: THE endpoint table (API.md §2): name, method, path template, path argument and the documented
   constraints of each field. Validation, URL building and core.endpoints are all driven from it. */
#include <string.h>
#include "endpoints.h"
#include "json.h"

#define REQ SM_REQUIRED
#define NUL SM_NULLABLE
#define SECRET SM_SECRET
#define NOLIM (-1)

static const char *const call_statuses[] =
  { "scheduled", "in_progress", "ended", "not_connected", "error", NULL };
static const char *const campaign_statuses[] = { "live", "scheduled", "paused", "completed", NULL };
static const char *const campaign_set_statuses[] = { "live", "paused", NULL };   /* API.md §2 row 10 */

#define F_STR(n, fl, lo, hi) { n, SM_T_STRING, fl, lo, hi, NULL, NULL }
#define F_(n, t, fl)         { n, t, fl, 0, 0, NULL, NULL }
#define F_INT(n, fl, lo, hi) { n, SM_T_INT, fl, lo, hi, NULL, NULL }
#define F_ENUM(n, fl, ch)    { n, SM_T_ENUM, fl, 0, 0, ch, NULL }
/* a string field that SigmaMind spells one way on this endpoint and another elsewhere: either is taken */
#define F_ALIAS(n, al, fl, lo, hi) { n, SM_T_STRING, fl, lo, hi, NULL, al }
#define F_END                { NULL, 0, 0, 0, 0, NULL, NULL }
#define PAGING F_INT("page", 0, 0, NOLIM), F_INT("size", 0, 1, 100)

static const sm_field no_fields[] = { F_END };

static const sm_field calls_create[] = {
  F_("fromPhoneNumber", SM_T_E164, REQ), F_("toPhoneNumber", SM_T_E164, REQ),
  F_STR("agentId", 0, 1, 64), F_("dynamicVariables", SM_T_OBJECT, 0), F_END
};
static const sm_field calls_list[] = { F_ENUM("status", 0, call_statuses), PAGING, F_END };

static const sm_field campaigns_create[] = {
  F_STR("campaignName", REQ, 1, 128), F_STR("agentId", REQ, 1, 64), F_("sipPhoneNumber", SM_T_E164, REQ),
  F_("file", SM_T_BASE64, REQ), F_INT("concurrentCalls", 0, 1, NOLIM), F_("dynamicVariables", SM_T_OBJECT, 0),
  F_("isScheduled", SM_T_BOOL, 0), F_("scheduledDate", SM_T_DATE, 0), F_("scheduledTime", SM_T_TIME, 0),
  F_("scheduledTimezone", SM_T_TZ, 0), F_END
};
static const sm_field campaigns_list[] = { F_ENUM("status", 0, campaign_statuses), PAGING, F_END };
static const sm_field campaigns_update[] = {
  F_STR("campaignName", 0, 1, 128), F_STR("agentId", 0, 1, 64), F_("sipPhoneNumber", SM_T_E164, 0),
  F_("file", SM_T_FORBIDDEN, 0), F_INT("concurrentCalls", 0, 1, NOLIM), F_("dynamicVariables", SM_T_OBJECT, 0),
  F_("isScheduled", SM_T_BOOL, 0), F_("scheduledDate", SM_T_DATE, 0), F_("scheduledTime", SM_T_TIME, 0),
  F_("scheduledTimezone", SM_T_TZ, 0), F_ENUM("campaignStatus", 0, campaign_set_statuses), F_END
};

static const sm_field numbers_list[] = { PAGING, F_END };
static const sm_field numbers_provision[] = {
  F_("phoneNumber", SM_T_E164, 0), F_("countryCode", SM_T_COUNTRY, 0), F_INT("areaCode", 0, 100, 99999),
  F_STR("friendlyName", 0, 0, 128), F_STR("inboundAgentId", 0, 1, 64), F_STR("outboundAgentId", 0, 1, 64),
  F_("outboundPhoneNumber", SM_T_E164, 0), F_END
};
static const sm_field numbers_import[] = {
  F_("phoneNumber", SM_T_E164, REQ), F_ALIAS("terminationSipURI", "terminationSipUri", REQ, 1, 253),
  F_STR("trunkUsername", REQ | SECRET, 1, NOLIM), F_STR("trunkPassword", REQ | SECRET, 1, NOLIM),
  F_STR("friendlyName", 0, 0, 128), F_STR("inboundAgentId", 0, 1, 64),
  F_STR("outboundAgentId", 0, 1, 64), F_("outboundPhoneNumber", SM_T_E164, 0), F_END
};
static const sm_field numbers_update[] = {
  F_STR("friendlyName", 0, 0, 128), F_STR("inboundAgentId", NUL, 1, 64), F_STR("outboundAgentId", NUL, 1, 64),
  F_ALIAS("terminationSipUri", "terminationSipURI", 0, 1, 253), F_STR("trunkUsername", SECRET, 1, NOLIM),
  F_STR("trunkPassword", SECRET, 1, NOLIM), F_("outboundPhoneNumber", SM_T_E164, 0), F_END
};

static const sm_field webhooks_create[] = {
  F_STR("name", REQ, 1, 128), F_STR("agentId", REQ, 1, 64), F_("url", SM_T_URL, REQ),
  F_("events", SM_T_EVENTS, REQ), F_END
};
static const sm_field webhooks_list[] = { F_STR("agentId", 0, 1, 64), F_("active", SM_T_BOOL, 0), PAGING, F_END };
static const sm_field webhooks_update[] = {
  F_STR("name", 0, 1, 128), F_("url", SM_T_URL, 0), F_("events", SM_T_EVENTS, 0), F_("active", SM_T_BOOL, 0),
  F_END
};
static const sm_field agents_list[] = { PAGING, F_END };

static const sm_endpoint endpoints[] = {
  { "calls.create", "POST", "/v1/calls", NULL, 0, 1, SM_X_NONE, calls_create },
  { "calls.get", "GET", "/v1/calls/{callId}", "callId", 0, 0, SM_X_NONE, no_fields },
  { "calls.list", "GET", "/v1/calls", NULL, 0, 0, SM_X_NONE, calls_list },
  { "calls.delete", "DELETE", "/v1/calls/{callId}", "callId", 0, 0, SM_X_NONE, no_fields },

  { "campaigns.create", "POST", "/v1/campaigns", NULL, 0, 1, SM_X_SCHEDULE, campaigns_create },
  { "campaigns.get", "GET", "/v1/campaigns/{campaignId}", "campaignId", 0, 0, SM_X_NONE, no_fields },
  { "campaigns.list", "GET", "/v1/campaigns", NULL, 0, 0, SM_X_NONE, campaigns_list },
  { "campaigns.update", "PATCH", "/v1/campaigns/{campaignId}", "campaignId", 0, 1, SM_X_SCHEDULE,
    campaigns_update },
  { "campaigns.delete", "DELETE", "/v1/campaigns/{campaignId}", "campaignId", 0, 0, SM_X_NONE, no_fields },

  { "phone_numbers.list", "GET", "/v1/phone-numbers", NULL, 0, 0, SM_X_NONE, numbers_list },
  { "phone_numbers.provision", "POST", "/v1/phone-numbers", NULL, 0, 1, SM_X_PROVISION, numbers_provision },
  { "phone_numbers.import", "POST", "/v1/phone-numbers/import", NULL, 0, 1, SM_X_NONE, numbers_import },
  { "phone_numbers.get", "GET", "/v1/phone-numbers/{phoneNumber}", "phoneNumber", 1, 0, SM_X_NONE, no_fields },
  { "phone_numbers.update", "PATCH", "/v1/phone-numbers/{phoneNumber}", "phoneNumber", 1, 1, SM_X_NONE,
    numbers_update },
  { "phone_numbers.delete", "DELETE", "/v1/phone-numbers/{phoneNumber}", "phoneNumber", 1, 0, SM_X_NONE,
    no_fields },

  { "webhooks.create", "POST", "/v1/webhooks", NULL, 0, 1, SM_X_NONE, webhooks_create },
  { "webhooks.list", "GET", "/v1/webhooks", NULL, 0, 0, SM_X_NONE, webhooks_list },
  { "webhooks.get", "GET", "/v1/webhooks/{webhookId}", "webhookId", 0, 0, SM_X_NONE, no_fields },
  { "webhooks.update", "PATCH", "/v1/webhooks/{webhookId}", "webhookId", 0, 1, SM_X_NONE, webhooks_update },
  { "webhooks.delete", "DELETE", "/v1/webhooks/{webhookId}", "webhookId", 0, 0, SM_X_NONE, no_fields },

  { "agents.list", "GET", "/v1/agents", NULL, 0, 0, SM_X_NONE, agents_list },
  { "agents.get", "GET", "/v1/agents/{agentId}", "agentId", 0, 0, SM_X_NONE, no_fields },
  { NULL, NULL, NULL, NULL, 0, 0, 0, NULL }
};

const sm_endpoint *sm_endpoint_find(const char *name) {
  const sm_endpoint *ep;
  for (ep = endpoints; ep->name; ep++)
    if (strcmp(ep->name, name) == 0) return ep;
  return NULL;
}

const sm_endpoint *sm_endpoint_at(int i) {
  return (i >= 0 && i < (int)(sizeof endpoints / sizeof endpoints[0]) - 1) ? &endpoints[i] : NULL;
}

const sm_field *sm_endpoint_field(const sm_endpoint *ep, const char *name) {
  const sm_field *f;
  for (f = ep->fields; f->name; f++)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

const sm_field *sm_endpoint_spelling(const sm_endpoint *ep, const char *name, int *alias) {
  const sm_field *f = sm_endpoint_field(ep, name);
  *alias = 0;
  if (f) return f;
  for (f = ep->fields; f->name; f++)
    if (f->alias && strcmp(f->alias, name) == 0) { *alias = 1; return f; }
  return NULL;
}

static const char *const type_names[] = {
  "string", "e164", "integer", "boolean", "object", "events", "enum", "url", "country", "date", "time",
  "timezone", "base64", "forbidden"
};

/* core.endpoints: name -> { method, path, args = { names }, body = bool, fields = { name -> {type, required,
   nullable, secret, min, max, choices, alias} } }; read-only by convention. */
void sm_push_endpoints(lua_State *L) {
  const sm_endpoint *ep;
  lua_newtable(L);
  for (ep = endpoints; ep->name; ep++) {
    const sm_field *f;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ep->method); lua_setfield(L, -2, "method");
    lua_pushstring(L, ep->path); lua_setfield(L, -2, "path");
    lua_createtable(L, ep->arg ? 1 : 0, 0);
    if (ep->arg) { lua_pushstring(L, ep->arg); lua_rawseti(L, -2, 1); }
    lua_setfield(L, -2, "args");
    lua_pushboolean(L, ep->body); lua_setfield(L, -2, "body");
    lua_newtable(L);
    for (f = ep->fields; f->name; f++) {
      lua_createtable(L, 0, 6);
      lua_pushstring(L, type_names[f->type]); lua_setfield(L, -2, "type");
      lua_pushboolean(L, (f->flags & SM_REQUIRED) != 0); lua_setfield(L, -2, "required");
      if (f->flags & SM_NULLABLE) { lua_pushboolean(L, 1); lua_setfield(L, -2, "nullable"); }
      if (f->flags & SM_SECRET) { lua_pushboolean(L, 1); lua_setfield(L, -2, "secret"); }
      if (f->alias) { lua_pushstring(L, f->alias); lua_setfield(L, -2, "alias"); }
      if (f->type == SM_T_STRING || f->type == SM_T_INT) {
        if (f->min > 0 || f->type == SM_T_INT) { lua_pushinteger(L, f->min); lua_setfield(L, -2, "min"); }
        if (f->max != NOLIM) { lua_pushinteger(L, f->max); lua_setfield(L, -2, "max"); }
      }
      if (f->choices) {
        int i;
        lua_newtable(L);
        for (i = 0; f->choices[i]; i++) { lua_pushstring(L, f->choices[i]); lua_rawseti(L, -2, i + 1); }
        lua_setfield(L, -2, "choices");
      }
      lua_setfield(L, -2, f->name);
    }
    lua_setfield(L, -2, "fields");
    lua_setfield(L, -2, ep->name);
  }
}
