/* fuzz_webhook.c: the webhook signature header parser (lua/sigmamind/webhook.lua, in Lua) run in the
   embedded state against the instrumented core (hmac_sha256, consteq, json_decode). The input gives the
   body, the header values and the timestamp; half the time the header is signed properly with the secret so
   the timestamp checks and the event decoding are reached. verify must return the event or nil, failure for
   any delivery: a raised error is a finding. (Coverage feedback reaches only the C core: liblua is not
   instrumented, so this one is closer to a random tester than the others.) */
#include "fuzz_common.h"

static const char driver[] =
  "local webhook = require 'sigmamind.webhook'\n"
  "return function(body, h1, h2, t, mode)\n"
  "  local secret = 'whsec_fuzz'\n"
  "  local headers = {}\n"
  "  if mode % 4 == 0 then\n"
  "    headers['X-SigmaMind-Signature'] = h1\n"
  "  elseif mode % 4 == 1 then\n"
  "    headers['x-sigmamind-signature'] = { h1, h2 }\n"
  "  elseif mode % 4 == 2 then\n"
  "    local sig = require('sigmamind.core').hmac_sha256(secret, t .. '.' .. body, 'hex')\n"
  "    headers['X-SigmaMind-Signature'] = 't=' .. t .. ',v1=' .. sig .. ',' .. h1\n"
  "  else\n"
  "    headers['X-Sigmamind-Signature'] = h1 .. 'v1=' .. require('sigmamind.core').hmac_sha256(secret, body, 'hex')\n"
  "  end\n"
  "  local opts = { secret = secret, now = 1700000000, tolerance = 300 }\n"
  "  if mode % 8 >= 4 then opts.scheme = 'plain' end\n"
  "  if mode % 16 >= 8 then opts.dedupe = webhook.dedupe{ now = 1700000000 } end\n"
  "  local ev, fail = webhook.verify(body, headers, opts)\n"
  "  if ev == nil then\n"
  "    assert(type(fail) == 'table' and type(fail.reason) == 'string' and type(fail.message) == 'string')\n"
  "    assert(type(tostring(fail)) == 'string')\n"
  "  else\n"
  "    assert(type(ev) == 'table')\n"
  "  end\n"
  "end\n";

static int verify_ref = LUA_NOREF;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fuzz_L = fuzz_state();
  if (luaL_loadstring(fuzz_L, driver) != LUA_OK || lua_pcall(fuzz_L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: %s\n", lua_tostring(fuzz_L, -1));
    abort();
  }
  verify_ref = luaL_ref(fuzz_L, LUA_REGISTRYINDEX);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_L;
  fuzz_in in;
  size_t len;
  const char *s;
  unsigned mode;
  in.p = data; in.n = size;
  mode = fuzz_byte(&in);
  lua_rawgeti(L, LUA_REGISTRYINDEX, verify_ref);
  s = fuzz_bytes(&in, &len); lua_pushlstring(L, s, len);     /* h1 */
  s = fuzz_bytes(&in, &len); lua_pushlstring(L, s, len);     /* h2 */
  s = fuzz_bytes(&in, &len); lua_pushlstring(L, s, len);     /* t */
  lua_pushlstring(L, (const char *)in.p, in.n);              /* body: the rest */
  lua_insert(L, -4);
  lua_pushinteger(L, (lua_Integer)mode);
  if (lua_pcall(L, 5, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: webhook.verify raised: %s\n", lua_tostring(L, -1));
    abort();
  }
  fuzz_end(L);
  return 0;
}
