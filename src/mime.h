/* mime.h: a campaign sent as multipart/form-data (campaign_upload = "multipart", mime.c): the JSON body
   re-encoded as the form's parts in one Lua string, pinned as a body is, and the libcurl form built from that
   string in C alone, so no Lua error can strand it. Builds on request.h, json.h and crypto.h. */
#ifndef SM_MIME_H
#define SM_MIME_H

#include <stddef.h>
#include <curl/curl.h>
#include "request.h"

/* whether the endpoint's body may go as a form (campaigns.create) */
int sm_mime_applies(const sm_endpoint *ep);
/* Replaces r's JSON body, the string at idx, by its form parts (r->body points at them, r->form set): text
   fields, the other fields' JSON text, `file` base64-decoded into a CSV file part and `dynamicVariables`
   as the JSON part `variables`. The body was validated and encoded first, so this cannot refuse it. */
void sm_mime_encode(lua_State *L, sm_req *r, int idx);
/* the libcurl form of parts made by sm_mime_encode, for easy; NULL when out of memory */
curl_mime *sm_mime_build(CURL *easy, const char *parts, size_t len);

#endif
