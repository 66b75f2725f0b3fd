/* crypto.c: base64 (RFC 4648, strict), HMAC-SHA256 through libcrypto, and a constant-time compare. */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "crypto.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes into out (may be NULL to only check); returns the decoded length or -1. Padding is required,
   only at the end, and the unused bits of the last quantum must be zero (canonical form). */
static long b64_decode(const char *s, size_t len, unsigned char *out) {
  size_t i, o = 0;
  if (len % 4 != 0) return -1;
  for (i = 0; i < len; i += 4) {
    int v[4], k, pad = 0;
    for (k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + k];
      if (c == '=' && i + 4 == len && k >= 2) { v[k] = 0; pad++; continue; }
      if (pad) return -1;                   /* data after '=' */
      if ((v[k] = b64val(c)) < 0) return -1;
    }
    if (pad == 1 && (v[2] & 3)) return -1;
    if (pad == 2 && (v[1] & 15)) return -1;
    if (out) {
      out[o] = (unsigned char)(v[0] << 2 | v[1] >> 4);
      if (pad < 2) out[o + 1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
      if (pad < 1) out[o + 2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    o += 3 - (size_t)pad;
  }
  return (long)o;
}

int sm_base64_valid(const char *s, size_t len) { return b64_decode(s, len, NULL) >= 0; }

int l_core_base64_encode(lua_State *L) {
  size_t len, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (len + 2) / 3 * 4);
  for (i = 0; i + 2 < len; i += 3) {
    *p++ = b64[s[i] >> 2];
    *p++ = b64[(s[i] & 3) << 4 | s[i + 1] >> 4];
    *p++ = b64[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
    *p++ = b64[s[i + 2] & 63];
  }
  if (i < len) {
    *p++ = b64[s[i] >> 2];
    if (i + 1 < len) {
      *p++ = b64[(s[i] & 3) << 4 | s[i + 1] >> 4];
      *p++ = b64[(s[i + 1] & 15) << 2];
    } else {
      *p++ = b64[(s[i] & 3) << 4];
      *p++ = '=';
    }
    *p++ = '=';
  }
  luaL_pushresultsize(&b, (len + 2) / 3 * 4);
  return 1;
}

int l_core_base64_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  long n;
  unsigned char *out;
  if (b64_decode(s, len, NULL) < 0) {
    luaL_pushfail(L);
    lua_pushliteral(L, "invalid base64 (RFC 4648, padded, standard alphabet)");
    return 2;
  }
  out = (unsigned char *)luaL_buffinitsize(L, &b, len / 4 * 3 + 1);
  n = b64_decode(s, len, out);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

int l_core_hmac_sha256(lua_State *L) {
  static const char *const forms[] = { "hex", "raw", NULL };
  static const char hex[] = "0123456789abcdef";
  size_t klen, mlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *msg = luaL_checklstring(L, 2, &mlen);
  int form = luaL_checkoption(L, 3, "hex", forms);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, mac, &maclen))
    return luaL_error(L, "sigmamind.core: HMAC-SHA256 failed");
  if (form == 1) lua_pushlstring(L, (const char *)mac, maclen);
  else {
    char out[2 * EVP_MAX_MD_SIZE];
    size_t i;
    for (i = 0; i < maclen; i++) { out[2 * i] = hex[mac[i] >> 4]; out[2 * i + 1] = hex[mac[i] & 15]; }
    lua_pushlstring(L, out, 2 * (size_t)maclen);
  }
  OPENSSL_cleanse(mac, sizeof mac);
  return 1;
}

/* constant time in the contents; the lengths are not secret */
int l_core_consteq(lua_State *L) {
  size_t la, lb;
  const char *a = luaL_checklstring(L, 1, &la);
  const char *b = luaL_checklstring(L, 2, &lb);
  lua_pushboolean(L, la == lb && CRYPTO_memcmp(a, b, la) == 0);
  return 1;
}
