/* crypto.h: base64, HMAC-SHA256 and a constant-time compare (crypto.c, over libcrypto). */
#ifndef SM_CRYPTO_H
#define SM_CRYPTO_H

#include <stddef.h>
#include "compat.h"

int sm_base64_valid(const char *s, size_t len);  /* strict RFC 4648 with padding */
int l_core_base64_encode(lua_State *L);
int l_core_base64_decode(lua_State *L);
int l_core_hmac_sha256(lua_State *L);
int l_core_consteq(lua_State *L);

#endif
