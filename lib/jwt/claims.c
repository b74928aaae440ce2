/* JWT claim checks (RFC 7519 section 4.1) with a bounded clock leeway. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "gw/jwt.h"

/* A NumericDate: a JSON number; fractions are allowed by RFC 7519. */
static bool numeric_date(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

/* RFC 7515 4.1.9: "typ" is a media type, case-insensitive, and the
 * "application/" prefix may be left out. */
static bool typ_equal(const char *got, const char *want)
{
    if (strncasecmp(got, "application/", 12) == 0 && strchr(got + 12, '/') == NULL)
        got += 12;
    if (strncasecmp(want, "application/", 12) == 0)
        want += 12;
    return strcasecmp(got, want) == 0;
}

int gw_jwt_check(const json_t *header, const json_t *claims, const struct gw_jwt_expect *ex,
                 struct gw_error *err)
{
    int leeway = ex->leeway_s < 0 ? 0 : ex->leeway_s;
    double exp, nbf, iat, now = (double)ex->now;
    json_t *v;

    if (leeway > GW_JWT_MAX_LEEWAY_S)
        leeway = GW_JWT_MAX_LEEWAY_S;
    if (!json_is_object(claims))
        return gw_error_set(err, GW_EAUTH, false, "token payload is not a JSON object");
    if (ex->typ != NULL) {
        const char *typ = json_string_value(json_object_get(header, "typ"));
        if (typ == NULL || !typ_equal(typ, ex->typ))
            return gw_error_set(err, GW_EAUTH, false, "token type mismatch");
    }
    v = json_object_get(claims, "exp");
    if (v == NULL)
        return gw_error_set(err, GW_EAUTH, false, "token has no expiry");
    if (!numeric_date(v, &exp))
        return gw_error_set(err, GW_EAUTH, false, "malformed exp claim");
    if (now >= exp + leeway)
        return gw_error_set(err, GW_EAUTH, false, "token expired");
    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!numeric_date(v, &nbf))
            return gw_error_set(err, GW_EAUTH, false, "malformed nbf claim");
        if (now + leeway < nbf)
            return gw_error_set(err, GW_EAUTH, false, "token not yet valid");
    }
    v = json_object_get(claims, "iat");
    if (v != NULL) {
        if (!numeric_date(v, &iat))
            return gw_error_set(err, GW_EAUTH, false, "malformed iat claim");
        if (now + leeway < iat)
            return gw_error_set(err, GW_EAUTH, false, "token issued in the future");
    } else if (ex->require_iat) {
        return gw_error_set(err, GW_EAUTH, false, "token has no iat claim");
    }
    if (ex->issuer != NULL) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (iss == NULL || strcmp(iss, ex->issuer) != 0)
            return gw_error_set(err, GW_EAUTH, false, "issuer mismatch");
    }
    if (ex->audience != NULL) {
        bool ok = false;
        v = json_object_get(claims, "aud");
        if (json_is_string(v)) {
            ok = strcmp(json_string_value(v), ex->audience) == 0;
        } else if (json_is_array(v)) {
            size_t i;
            json_t *a;
            json_array_foreach(v, i, a) if (json_is_string(a) &&
                                            strcmp(json_string_value(a), ex->audience) == 0) ok =
                true;
        }
        if (!ok)
            return gw_error_set(err, GW_EAUTH, false, "audience mismatch");
    }
    return 0;
}
