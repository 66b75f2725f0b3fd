/* validate.c: the documented constraints of the endpoint table, checked before anything is sent.
   Messages read "<field>: expected <what>, got <what was given>". */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include "crypto.h"
#include "validate.h"
#include "json.h"

#define SHOW_MAX 40

static const char *const event_names[] =
  { "conversation_started", "conversation_ended", "conversation_analysed", "conversation_analyzed", NULL };

/* 1 when s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF): what
   a JSON text must be made of, and what the server reads */
int sm_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p, lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (c < 0x80) { p++; continue; }
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if ((size_t)(end - p) <= n || p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i <= n; i++) if ((p[i] & 0xC0) != 0x80) return 0;
    p += n + 1;
  }
  return 1;
}

/* adds a short description of the value at idx: "12345" (quoted, truncated), 12, true, a table, nothing. A
   secret field's value is never shown, only its type. */
static void add_given(lua_State *L, luaL_Buffer *b, int idx, int secret) {
  int t = lua_type(L, idx);
  if (secret && t != LUA_TNONE && t != LUA_TNIL && t != LUA_TLIGHTUSERDATA) {
    if (t == LUA_TSTRING && lua_rawlen(L, idx) == 0) luaL_addstring(b, "an empty string");
    else { luaL_addstring(b, "a "); luaL_addstring(b, luaL_typename(L, idx)); }
    return;
  }
  switch (t) {
    case LUA_TNONE: case LUA_TNIL: luaL_addstring(b, "nothing"); break;
    case LUA_TSTRING: {
      size_t len, i, n;
      const char *s = lua_tolstring(L, idx, &len);
      int utf8 = sm_utf8_valid(s, len);
      n = len > SHOW_MAX ? SHOW_MAX : len;
      while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* a whole last character */
      luaL_addchar(b, '"');
      /* cppcheck 2.10 wrongly takes len (set through lua_tolstring's out-parameter) to be 0 on these lines */
      for (i = 0; i < n; i++) { /* cppcheck-suppress knownConditionTrueFalse */
        unsigned char c = (unsigned char)s[i];
        luaL_addchar(b, (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c >= 0x80 && !utf8)) ? '?' : (char)c);
      }
      if (n < len) luaL_addstring(b, "...");  /* cppcheck-suppress knownConditionTrueFalse */
      luaL_addchar(b, '"');
      /* cppcheck-suppress knownConditionTrueFalse */
      if (n < len) { lua_pushfstring(L, " (%I bytes)", (LUA_INTEGER)len); luaL_addvalue(b); }
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) lua_pushfstring(L, "%I", lua_tointeger(L, idx));
      else lua_pushfstring(L, "%f", lua_tonumber(L, idx));
      luaL_addvalue(b);
      break;
    case LUA_TBOOLEAN: luaL_addstring(b, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { luaL_addstring(b, "null"); break; }
      /* fallthrough */
    default:
      luaL_addstring(b, "a ");
      luaL_addstring(b, luaL_typename(L, idx));
  }
}

/* pushes "<label>: expected <what>, got <given><tail>" */
static void push_msg_s(lua_State *L, const char *label, const char *what, int idx, const char *tail,
                       int secret) {
  luaL_Buffer b;
  idx = lua_absindex(L, idx);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, label);
  luaL_addstring(&b, ": expected ");
  luaL_addstring(&b, what);
  luaL_addstring(&b, ", got ");
  add_given(L, &b, idx, secret);
  if (tail) luaL_addstring(&b, tail);
  luaL_pushresult(&b);
}

static void push_msg(lua_State *L, const char *label, const char *what, int idx, const char *tail) {
  push_msg_s(L, label, what, idx, tail, 0);
}

/* Bytes no field may carry: a NUL (C code and the server cut strings there) and broken UTF-8 (not JSON, so
   the server answers 400 to the whole request). 0 when s is clean, 1 for a NUL, 2 for broken UTF-8. */
static int bytes_fault(const char *s, size_t len) {
  if (memchr(s, '\0', len)) return 1;
  return sm_utf8_valid(s, len) ? 0 : 2;
}

static const char *const fault_text[] = { "", "contains a NUL byte", "invalid UTF-8" };

/* 1 when s is clean, else 0 with "<label>: <fault>" pushed */
static int check_bytes(lua_State *L, const char *label, const char *s, size_t len) {
  int fault = bytes_fault(s, len);
  if (fault) lua_pushfstring(L, "%s: %s", label, fault_text[fault]);
  return !fault;
}

int sm_is_e164(const char *s, size_t len) {
  size_t i;
  if (len < 8 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9') return 0;
  for (i = 2; i < len; i++) if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

static int is_date(const char *s, size_t len) {
  static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  int y, m, d, leap, i;
  if (len != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (i = 0; i < 10; i++) if (i != 4 && i != 7 && !is_digit(s[i])) return 0;
  y = num2(s) * 100 + num2(s + 2); m = num2(s + 5); d = num2(s + 8);
  if (m < 1 || m > 12 || d < 1) return 0;
  leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= mdays[m - 1] + (m == 2 && leap);
}

static int is_time(const char *s, size_t len) {
  return len == 5 && is_digit(s[0]) && is_digit(s[1]) && s[2] == ':' && is_digit(s[3]) && is_digit(s[4])
         && num2(s) <= 23 && num2(s + 3) <= 59;
}

/* an IANA zone name: parts split by '/', each a letter then [A-Za-z0-9_+-] (America/New_York, UTC, GMT, Japan,
   Etc/GMT+5). Whether the zone exists is the server's to say: a local tzdata may be older than the server's. */
static int is_tz(const char *s, size_t len) {
  size_t i, part = 0;
  if (len == 0 || len > 64) return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (c == '/') { if (part == 0) return 0; part = 0; continue; }
    if (part == 0 ? !letter : !(letter || is_digit(c) || c == '_' || c == '+' || c == '-')) return 0;
    part++;
  }
  return part > 0;
}

static int is_country(const char *s, size_t len) {
  return len == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

/* ^https?:// (any case) then a non-empty host; no spaces or control characters anywhere */
static int is_url(const char *s, size_t len) {
  size_t i, p;
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) return 0;
  if (len > 7 && strncasecmp(s, "http://", 7) == 0) p = 7;          /* schemes are case-insensitive */
  else if (len > 8 && strncasecmp(s, "https://", 8) == 0) p = 8;
  else return 0;
  return p < len && s[p] != '/' && s[p] != '?' && s[p] != '#' && s[p] != ':';
}

static int in_list(const char *s, size_t len, const char *const *list) {
  for (; *list; list++)
    if (strlen(*list) == len && memcmp(*list, s, len) == 0) return 1;
  return 0;
}

/* what an enum expects: "one of a, b, c" */
static void push_choices(lua_State *L, const char *const *list) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "one of ");
  for (; *list; list++) {
    luaL_addstring(&b, *list);
    if (list[1]) luaL_addstring(&b, ", ");
  }
  luaL_pushresult(&b);
}

static int get_integer(lua_State *L, int idx, long long *out) {
  if (lua_isinteger(L, idx)) { *out = (long long)lua_tointeger(L, idx); return 1; }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double d = lua_tonumber(L, idx);
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) { *out = (long long)d; return 1; }
  }
  return 0;
}

/* a string's length in characters, as API.md's limits count (its UTF-8 code points: every byte but the
   continuation bytes 0x80-0xBF), so that 64 accented letters fit a limit of 64 */
static long long chars(const char *s, size_t len) {
  long long n = 0;
  size_t i;
  for (i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

/* checks the value at idx (absolute) against f; 1 if valid, else 0 with the message pushed */
static int check_field(lua_State *L, const sm_field *f, int idx) {
  int t = lua_type(L, idx);
  size_t len = 0;
  const char *s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  const char *what = NULL;
  int secret = (f->flags & SM_SECRET) != 0;

  if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL && (f->flags & SM_NULLABLE)) return 1;
  if (s && !check_bytes(L, f->name, s, len)) return 0;
  switch (f->type) {
    case SM_T_STRING:
      if (s) {
        long long n = chars(s, len);
        if (n >= f->min && (f->max < 0 || n <= f->max)) return 1;
      }
      if (f->max >= 0 && f->min > 0) lua_pushfstring(L, "a string of %I to %I characters", (LUA_INTEGER)f->min,
                                                     (LUA_INTEGER)f->max);
      else if (f->max >= 0) lua_pushfstring(L, "a string of at most %I characters", (LUA_INTEGER)f->max);
      else lua_pushstring(L, f->min > 0 ? "a non-empty string" : "a string");
      if (f->flags & SM_NULLABLE) lua_pushliteral(L, " or null"), lua_concat(L, 2);
      push_msg_s(L, f->name, lua_tostring(L, -1), idx, NULL, secret);
      lua_remove(L, -2);
      return 0;
    case SM_T_E164:
      if (s && sm_is_e164(s, len)) return 1;
      what = "an E.164 phone number like +14155552671";
      if (t == LUA_TNUMBER) {
        push_msg_s(L, f->name, what, idx, " (pass phone numbers as strings, with the +)", secret);
        return 0;
      }
      break;
    case SM_T_INT: {
      long long v;
      if (get_integer(L, idx, &v) && v >= f->min && (f->max < 0 || v <= f->max)) return 1;
      if (f->max >= 0) lua_pushfstring(L, "an integer from %I to %I", (LUA_INTEGER)f->min, (LUA_INTEGER)f->max);
      else lua_pushfstring(L, "an integer >= %I", (LUA_INTEGER)f->min);
      push_msg_s(L, f->name, lua_tostring(L, -1), idx, NULL, secret);
      lua_remove(L, -2);
      return 0;
    }
    case SM_T_BOOL:
      if (t == LUA_TBOOLEAN) return 1;
      what = "a boolean (true or false)";
      break;
    case SM_T_OBJECT:
      /* dynamicVariables: key-value pairs injected into the agent's prompt, so each value is a string, a
         (finite) number or a boolean, as the sandbox requires; a nested table is named by its key */
      if (t == LUA_TTABLE) {
        int ok = 1;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
          int vt = lua_type(L, -1);
          size_t klen, vlen;
          const char *k, *v;
          if (lua_type(L, -2) != LUA_TSTRING) { ok = 0; lua_pop(L, 2); break; }
          k = lua_tolstring(L, -2, &klen);
          if (bytes_fault(k, klen)) {                    /* the name is not shown: it is the broken part */
            lua_pushfstring(L, "%s: a variable name: %s", f->name, fault_text[bytes_fault(k, klen)]);
            lua_replace(L, -3);
            lua_pop(L, 1);
            return 0;
          }
          if (!(vt == LUA_TSTRING || vt == LUA_TBOOLEAN ||
                (vt == LUA_TNUMBER && (lua_isinteger(L, -1) || isfinite(lua_tonumber(L, -1)))))) {
            lua_pushfstring(L, "%s.%s", f->name, k);
            push_msg(L, lua_tostring(L, -1), "a string, number or boolean", -2, NULL);
            lua_replace(L, -4);
            lua_pop(L, 2);
            return 0;
          }
          v = vt == LUA_TSTRING ? lua_tolstring(L, -1, &vlen) : NULL;
          if (v && bytes_fault(v, vlen)) {
            lua_pushfstring(L, "%s.%s: %s", f->name, k, fault_text[bytes_fault(v, vlen)]);
            lua_replace(L, -3);
            lua_pop(L, 1);
            return 0;
          }
          lua_pop(L, 1);
        }
        if (ok) return 1;
      }
      what = "an object (a table with string keys)";
      break;
    case SM_T_EVENTS: {
      lua_Integer i, n;
      if (t != LUA_TTABLE || (n = (lua_Integer)lua_rawlen(L, idx)) == 0) {
        what = "a non-empty array of event names (conversation_started, conversation_ended, "
               "conversation_analysed)";
        break;
      }
      for (i = 1; i <= n; i++) {
        size_t elen;
        const char *e;
        lua_rawgeti(L, idx, i);
        e = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &elen) : NULL;
        if (!e || !in_list(e, elen, event_names)) {
          lua_pushfstring(L, "%s[%I]", f->name, i);
          push_msg(L, lua_tostring(L, -1), "one of conversation_started, conversation_ended, "
                   "conversation_analysed", -2, NULL);
          lua_replace(L, -3);
          lua_pop(L, 1);
          return 0;
        }
        lua_pop(L, 1);
      }
      return 1;
    }
    case SM_T_ENUM:
      if (s && in_list(s, len, f->choices)) return 1;
      push_choices(L, f->choices);
      push_msg_s(L, f->name, lua_tostring(L, -1), idx, NULL, secret);
      lua_remove(L, -2);
      return 0;
    case SM_T_URL:
      if (s && is_url(s, len)) return 1;
      what = "an http:// or https:// URL with a host";
      break;
    case SM_T_COUNTRY:
      if (s && is_country(s, len)) return 1;
      what = "a two-letter country code like US";
      break;
    case SM_T_DATE:
      if (s && is_date(s, len)) return 1;
      what = "a calendar date like 2025-09-01 (YYYY-MM-DD)";
      break;
    case SM_T_TIME:
      if (s && is_time(s, len)) return 1;
      what = "a time like 09:00 (HH:MM, 24-hour)";
      break;
    case SM_T_TZ:
      if (s && is_tz(s, len)) return 1;
      what = "an IANA time zone like America/New_York or UTC";
      break;
    case SM_T_BASE64:
      if (s && len > 0 && sm_base64_valid(s, len)) return 1;
      what = "non-empty base64 data (RFC 4648, the CSV bytes)";
      break;
    case SM_T_FORBIDDEN:
      what = "nothing (it cannot be changed by an update)";
      break;
  }
  push_msg_s(L, f->name, what, idx, NULL, secret);
  return 0;
}

/* params[name] without metamethods: what is validated is what the encoders (lua_next, lua_rawget) send */
static int rawfield(lua_State *L, int params, const char *name) {
  lua_pushstring(L, name);
  return lua_rawget(L, params);
}

static int present(lua_State *L, int params, const char *name) {
  int t = rawfield(L, params, name);
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

static int cross_check(lua_State *L, const sm_endpoint *ep, int params, const char **field) {
  if (ep->xcheck == SM_X_SCHEDULE) {
    static const char *const trio[] = { "scheduledDate", "scheduledTime", "scheduledTimezone" };
    static const char *const whats[] = {
      "a calendar date like 2025-09-01 (required when isScheduled is true)",
      "a time like 09:00 (required when isScheduled is true)",
      "an IANA time zone like America/New_York (required when isScheduled is true)" };
    int i, sched;
    rawfield(L, params, "isScheduled");
    sched = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (sched && !(ep->body && strcmp(ep->method, "PATCH") == 0)) {
      for (i = 0; i < 3; i++) {
        if (!present(L, params, trio[i])) {
          lua_pushnil(L);
          push_msg(L, trio[i], whats[i], -1, NULL);
          lua_remove(L, -2);
          *field = trio[i];
          return 0;
        }
      }
    }
  } else if (ep->xcheck == SM_X_PROVISION) {
    int has_cc = present(L, params, "countryCode");
    if (!has_cc && !present(L, params, "phoneNumber")) {
      lua_pushnil(L);
      push_msg(L, "phoneNumber", "an E.164 phone number like +14155552671 (or a countryCode to buy one in)",
               -1, NULL);
      lua_remove(L, -2);
      *field = "phoneNumber";
      return 0;
    }
    if (!has_cc && present(L, params, "areaCode")) {
      rawfield(L, params, "areaCode");
      push_msg(L, "areaCode", "nothing unless countryCode is given", -1, NULL);
      lua_remove(L, -2);
      *field = "areaCode";
      return 0;
    }
  }
  return 1;
}

/* ---- names: the endpoint's own, misspelt ones (refused, with a suggestion), and extra_body/extra_query ---- */

/* pushes the label of the value reached through the keys in stack slots keys[0..n-1]: extra, extra.list[2],
   root[1] (n == 0: root) */
static void push_label(lua_State *L, const char *root, const int *keys, int n) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  if (n == 0 || lua_type(L, keys[0]) != LUA_TSTRING) luaL_addstring(&b, root);
  for (i = 0; i < n; i++) {
    if (lua_type(L, keys[i]) == LUA_TSTRING) {
      if (i > 0) luaL_addchar(&b, '.');
      lua_pushvalue(L, keys[i]);
    } else if (lua_isinteger(L, keys[i])) {
      lua_pushfstring(L, "[%I]", lua_tointeger(L, keys[i]));
    } else if (lua_type(L, keys[i]) == LUA_TNUMBER) {
      lua_pushfstring(L, "[%f]", lua_tonumber(L, keys[i]));
    } else {
      lua_pushfstring(L, "[%s]", luaL_typename(L, keys[i]));   /* the encoder refuses such a key */
    }
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
}

/* pushes "<label>: <fault>", or "<label>: a field name: <fault>" when the key itself is at fault */
static void push_fault(lua_State *L, const char *root, const int *keys, int n, int fault, int in_name) {
  push_label(L, root, keys, n);
  lua_pushfstring(L, in_name ? "%s: a field name: %s" : "%s: %s", lua_tostring(L, -1), fault_text[fault]);
  lua_remove(L, -2);
}

/* Optimal string alignment distance of a and b ignoring ASCII case, or 99 when it is over 2 (only names of up
   to 63 bytes are compared: the endpoint's are all shorter). */
static int near(const char *a, size_t la, const char *b, size_t lb) {
  int d[64][64];
  size_t i, j;
  if (la >= 64 || lb >= 64 || (la > lb ? la - lb : lb - la) > 2) return 99;
  for (i = 0; i <= la; i++) d[i][0] = (int)i;
  for (j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (i = 1; i <= la; i++) {
    for (j = 1; j <= lb; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      int v = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;               /* two neighbours swapped: "stauts" */
      d[i][j] = v;
    }
  }
  return d[la][lb] <= 2 ? d[la][lb] : 99;
}

/* the endpoint's field whose name the unknown name k most likely meant: the same but for case, or one or two
   edits away (one for names of up to four letters, where two edits make anything of anything) */
static const char *suggest(const sm_endpoint *ep, const char *k, size_t len) {
  const sm_field *f;
  const char *best = NULL;
  int best_d = 99;
  for (f = ep->fields; f->name; f++) {
    size_t n = strlen(f->name);
    int d = near(k, len, f->name, n);
    if (f->alias && near(k, len, f->alias, strlen(f->alias)) < d) d = near(k, len, f->alias, strlen(f->alias));
    if (d > ((len < n ? len : n) <= 4 ? 1 : 2)) continue;
    if (d < best_d) { best = f->name; best_d = d; }
  }
  return best;
}

/* pushes the message for the unknown name at stack slot k (a clean string): "stauts: not a field of
   calls.list; did you mean status?", or the endpoint's fields and the way to send others */
static void push_unknown(lua_State *L, const sm_endpoint *ep, int k) {
  luaL_Buffer b;
  size_t len, i;
  const char *s = lua_tolstring(L, k, &len), *best = suggest(ep, s, len);
  const sm_field *f;
  luaL_buffinit(L, &b);
  for (i = 0; i < len && i < 64; i++)
    luaL_addchar(&b, ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i]);
  if (i < len) luaL_addstring(&b, "...");
  luaL_addstring(&b, ": not a field of ");
  luaL_addstring(&b, ep->name);
  if (best) {
    luaL_addstring(&b, "; did you mean ");
    luaL_addstring(&b, best);
    luaL_addstring(&b, "?");
  } else if (!ep->fields[0].name) {
    luaL_addstring(&b, ep->body ? " (it takes none; extra_body sends others)"
                                : " (it takes none; extra_query sends others)");
  } else {
    luaL_addstring(&b, " (it takes ");
    for (f = ep->fields; f->name; f++) {
      luaL_addstring(&b, f->name);
      if (f[1].name) luaL_addstring(&b, ", ");
    }
    luaL_addstring(&b, ep->body ? "; extra_body sends others)" : "; extra_query sends others)");
  }
  luaL_pushresult(&b);
}

/* a declared field's name or alias (a name with a NUL byte never is one) */
static int is_declared(const sm_endpoint *ep, const char *k, size_t len) {
  int alias;
  return strlen(k) == len && sm_endpoint_spelling(ep, k, &alias) != NULL;
}

/* what a walk checks: params (strict: every top-level name must be the endpoint's), or extra_body/extra_query
   (root names them; any name goes, as given) */
typedef struct walk_ctx {
  const sm_endpoint *ep;
  const char *root;
  int strict;
  int nested;                 /* tables are walked below the top: a JSON body */
  const char **field;
} walk_ctx;

/* Checks the names and values of the table at t (absolute), depth tables below the root, reached through the
   keys in keys[0..depth-1]. Returns 1 when clean, -1 when nested deeper than JSON goes (the encoder refuses
   that body, so checking stops), 0 with the fault pushed and, at depth 0, *field set: the field's name, or the
   root's when a name is at fault. */
static int walk(lua_State *L, const walk_ctx *w, int t, int *keys, int depth) {
  int top = lua_gettop(L);
  if (depth > SM_JSON_MAX_DEPTH || !lua_checkstack(L, 12)) return -1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int kt = lua_type(L, -2), vt = lua_type(L, -1), fault = 0, r;
    size_t klen = 0, vlen = 0;
    const char *k = kt == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    const char *v = vt == LUA_TSTRING ? lua_tolstring(L, -1, &vlen) : NULL;
    keys[depth] = lua_gettop(L) - 1;
    if (depth == 0 && w->strict && k && is_declared(w->ep, k, klen)) {
      lua_pop(L, 1);                 /* checked by check_field */
      continue;
    }
    if (depth == 0 && !k && !w->nested) {
      push_label(L, w->root, keys, 1);
      lua_pushfstring(L, "%s: a query parameter's name must be a string", lua_tostring(L, -1));
      lua_remove(L, -2);
      *w->field = w->root;
      fault = 1;
    } else if (k && (fault = bytes_fault(k, klen)) != 0) {
      push_fault(L, w->root, keys, depth, fault, 1);
      if (depth == 0) *w->field = w->root;
    } else if (depth == 0 && w->strict) {
      if (k) push_unknown(L, w->ep, keys[0]);
      else {
        push_label(L, w->root, keys, 1);
        lua_pushfstring(L, "%s: not a field of %s (field names are strings)", lua_tostring(L, -1), w->ep->name);
        lua_remove(L, -2);
        *w->field = w->root;
      }
      fault = 1;
    } else if (v && (fault = bytes_fault(v, vlen)) != 0) {
      push_fault(L, w->root, keys, depth + 1, fault, 0);
    } else if (vt == LUA_TTABLE && w->nested) {
      if ((r = walk(L, w, lua_gettop(L), keys, depth + 1)) < 0) { lua_settop(L, top); return -1; }
      fault = r == 0;
    }
    if (fault) {
      if (depth == 0 && *w->field == NULL) *w->field = k ? k : w->root;
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return 0;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* the names in params that are not the endpoint's (refused), and those that are, as given */
static int check_names(lua_State *L, const sm_endpoint *ep, int params, const char **field) {
  int keys[SM_JSON_MAX_DEPTH + 2];
  walk_ctx w;
  w.ep = ep; w.root = "params"; w.strict = 1; w.nested = ep->body; w.field = field;
  *field = NULL;
  return walk(L, &w, params, keys, 0) != 0;
}

int sm_validate_extra(lua_State *L, const sm_endpoint *ep, int t, const char *root, int body, const char **field) {
  int keys[SM_JSON_MAX_DEPTH + 2];
  walk_ctx w;
  w.ep = ep; w.root = root; w.strict = 0; w.nested = body; w.field = field;
  *field = NULL;
  return walk(L, &w, lua_absindex(L, t), keys, 0) != 0;
}

/* pushes "<alias>: the same field as <name>; give one of the two" when params holds both spellings of f */
static int one_spelling(lua_State *L, const sm_field *f, int params, const char **field) {
  if (!present(L, params, f->alias)) return 1;
  lua_pushfstring(L, "%s: the same field as %s (SigmaMind spells it both ways); give one of the two", f->alias,
                  f->name);
  *field = f->alias;
  return 0;
}

/* The common case in one walk of params: every name one of the endpoint's (spelt one way only), every value
   valid, every required field there. 1 when so; 0 when anything at all is off, with nothing pushed, and then
   sm_validate_params checks field by field, in the endpoint's order, to report what the first fault is (the
   order the messages have always come in). Walking params once, looking each name up, replaces a lookup of
   every field and then a walk of params for the names. */
static int all_valid(lua_State *L, const sm_endpoint *ep, int params) {
  unsigned long long seen = 0;
  const sm_field *f;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 12)) return 0;
  lua_pushnil(L);
  while (lua_next(L, params)) {
    size_t klen;
    const char *k;
    int alias, i;
    if (lua_type(L, -2) != LUA_TSTRING) break;
    k = lua_tolstring(L, -2, &klen);
    f = sm_endpoint_spelling(ep, k, &alias);
    if (!f || strlen(k) != klen) break;                      /* not the endpoint's: refused by check_names */
    i = (int)(f - ep->fields);
    if (i >= 64 || (seen >> i) & 1) break;                   /* both spellings: refused by one_spelling */
    seen |= 1ull << i;
    if (!check_field(L, f, top + 2)) break;
    lua_pop(L, 1);
  }
  if (lua_gettop(L) != top) { lua_settop(L, top); return 0; }
  for (f = ep->fields; f->name; f++)
    if ((f->flags & SM_REQUIRED) && !((seen >> (f - ep->fields)) & 1)) return 0;
  return 1;
}

int sm_validate_params(lua_State *L, const sm_endpoint *ep, int params, const char **field) {
  const sm_field *f;
  if (lua_isnoneornil(L, params)) {
    lua_newtable(L);          /* validate as empty: required fields are reported */
    params = lua_gettop(L);
    for (f = ep->fields; f->name; f++) {
      if (f->flags & SM_REQUIRED) {
        lua_pushnil(L);
        if (!check_field(L, f, lua_gettop(L))) {
          lua_pushliteral(L, " (a required field)");
          lua_concat(L, 2);
          lua_replace(L, -3); lua_pop(L, 1);
          *field = f->name;
          return 0;
        }
        lua_pop(L, 1);
      }
    }
    if (!cross_check(L, ep, params, field)) { lua_remove(L, -2); return 0; }
    lua_pop(L, 1);
    return 1;
  }
  params = lua_absindex(L, params);
  if (all_valid(L, ep, params)) return cross_check(L, ep, params, field);   /* and every name is declared */
  for (f = ep->fields; f->name; f++) {
    sm_field as_given;
    const sm_field *g = f;
    int t = rawfield(L, params, f->name);
    if (t == LUA_TNIL && f->alias) {
      lua_pop(L, 1);
      if ((t = rawfield(L, params, f->alias)) != LUA_TNIL) {
        as_given = *f;                         /* checked and named as the caller spelt it */
        as_given.name = f->alias;
        g = &as_given;
      }
    } else if (t != LUA_TNIL && f->alias && !one_spelling(L, f, params, field)) {
      lua_remove(L, -2);
      return 0;
    }
    if (t == LUA_TNIL) {
      lua_pop(L, 1);
      if (!(f->flags & SM_REQUIRED)) continue;
      lua_pushnil(L);
    }
    if (!check_field(L, g, lua_gettop(L))) {
      if (t == LUA_TNIL) { lua_pushliteral(L, " (a required field)"); lua_concat(L, 2); }
      lua_remove(L, -2);
      *field = g->name;
      return 0;
    }
    lua_pop(L, 1);
  }
  return cross_check(L, ep, params, field) && check_names(L, ep, params, field);
}

/* path arguments: non-empty ids without control characters, not "." or ".."; E.164 where the API says */
int sm_validate_arg(lua_State *L, const sm_endpoint *ep, const char *s, size_t len) {
  size_t i;
  const char *what = NULL;
  if (ep->arg_e164) {
    if (!sm_is_e164(s, len)) what = "an E.164 phone number like +14155552671";
  } else if (len == 0 || len > 1024) {
    what = "a non-empty id of at most 1024 bytes";
  } else if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
    what = "an id other than \".\" or \"..\"";
  } else {
    for (i = 0; i < len; i++)
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) { what = "an id without control characters"; break; }
    if (!what && !sm_utf8_valid(s, len)) what = "an id in valid UTF-8";
  }
  if (!what) return 1;
  lua_pushlstring(L, s, len);
  push_msg(L, ep->arg, what, -1, NULL);
  lua_remove(L, -2);
  return 0;
}
