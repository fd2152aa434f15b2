/* Port-agent protocol codec (see port_proto.h and docs/port-protocol.md).
 * Every field of an incoming line is checked for type and range: the
 * process is outside input. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/port_proto.h"

static const char b64tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *port_b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64tab[(v >> 18) & 63];
        out[o++] = b64tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int port_b64_decode(const char *s, size_t slen, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (slen % 4 != 0)
        return MB_EPROTO;
    unsigned char *b = malloc(slen / 4 * 3 + 1);
    if (b == NULL)
        return MB_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < slen; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = b64val(s[i + k]);
            int pad_ok = s[i + k] == '=' && i + 4 == slen && k >= 2;
            if (v[k] < 0 && !pad_ok)
                goto bad;
        }
        if (v[2] < 0 && v[3] >= 0)
            goto bad;
        uint32_t x = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                     ((uint32_t)(v[2] < 0 ? 0 : v[2]) << 6) | (uint32_t)(v[3] < 0 ? 0 : v[3]);
        b[o++] = (unsigned char)(x >> 16);
        if (v[2] >= 0)
            b[o++] = (unsigned char)(x >> 8);
        if (v[3] >= 0)
            b[o++] = (unsigned char)x;
    }
    b[o] = '\0';
    *out = b;
    *len = o;
    return 0;
bad:
    free(b);
    return MB_EPROTO;
}

void port_cmd_free(port_cmd *c)
{
    free(c->data);
    free(c->text);
    switch (c->value.type) {
    case MB_VT_CHOICE:
        free(c->value.u.choice);
        break;
    case MB_VT_EMBEDDING:
    case MB_VT_DISTRIBUTION:
        free(c->value.u.vec.data);
        break;
    default:
        break;
    }
    memset(c, 0, sizeof(*c));
}

static int parse_id(const cJSON *v, mb_agent_id *out)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > 16)
        return MB_EPROTO;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->valuestring, &end, 16);
    if (errno != 0 || *end != '\0' || x == 0 || v->valuestring[0] == '-' ||
        v->valuestring[0] == '+' || v->valuestring[0] == ' ')
        return MB_EPROTO;
    *out = (mb_agent_id)x;
    return 0;
}

static int parse_uint(const cJSON *v, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != floor(v->valuedouble))
        return MB_EPROTO;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

/* "data" (UTF-8 text) or "data_b64" (bytes); both absent = empty. */
static int parse_data(const cJSON *root, port_cmd *c)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "data_b64");
    if (d != NULL && b != NULL)
        return MB_EPROTO;
    if (b != NULL) {
        if (!cJSON_IsString(b))
            return MB_EPROTO;
        return port_b64_decode(b->valuestring, strlen(b->valuestring), &c->data, &c->len);
    }
    const char *s = "";
    if (d != NULL) {
        if (!cJSON_IsString(d))
            return MB_EPROTO;
        s = d->valuestring;
    }
    c->len = strlen(s);
    c->data = malloc(c->len + 1);
    if (c->data == NULL)
        return MB_ENOMEM;
    memcpy(c->data, s, c->len + 1);
    return 0;
}

static int parse_value(const cJSON *v, mb_value *out)
{
    memset(out, 0, sizeof(*out));
    if (cJSON_IsBool(v)) {
        out->type = MB_VT_BOOL;
        out->u.b = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble))
            return MB_EPROTO;
        out->type = MB_VT_FLOAT;
        out->u.f = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        out->type = MB_VT_CHOICE;
        out->u.choice = strdup(v->valuestring);
        return out->u.choice ? 0 : MB_ENOMEM;
    }
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if (n <= 0 || n > 65536)
            return MB_EPROTO;
        double *d = malloc((size_t)n * sizeof(double));
        if (d == NULL)
            return MB_ENOMEM;
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
                free(d);
                return MB_EPROTO;
            }
            d[i++] = e->valuedouble;
        }
        out->type = MB_VT_EMBEDDING;
        out->u.vec.data = d;
        out->u.vec.n = (uint32_t)n;
        return 0;
    }
    return MB_EPROTO;
}

int port_decode_line(const char *line, size_t len, port_cmd *out, mb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len > PORT_MAX_LINE)
        return mb_errorf(err, MB_EPROTO, "port line of %zu bytes is too long", len);
    cJSON *root = cJSON_ParseWithLength(line, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mb_errorf(err, MB_EPROTO, "port line is not a JSON object");
    }
    int rc = MB_EPROTO;
    const char *what = "type";
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(t))
        goto bad;
    const char *ty = t->valuestring;
    if (strcmp(ty, "ready") == 0) {
        out->type = PORT_CMD_READY;
    } else if (strcmp(ty, "stop") == 0) {
        out->type = PORT_CMD_STOP;
    } else if (strcmp(ty, "send") == 0) {
        out->type = PORT_CMD_SEND;
        what = "to";
        if (parse_id(cJSON_GetObjectItemCaseSensitive(root, "to"), &out->to) != 0)
            goto bad;
        const cJSON *tag = cJSON_GetObjectItemCaseSensitive(root, "tag");
        uint64_t tg = 0;
        what = "tag";
        if (tag != NULL && parse_uint(tag, 4294967295.0, &tg) != 0)
            goto bad;
        out->tag = (uint32_t)tg;
        what = "data";
        if ((rc = parse_data(root, out)) != 0)
            goto bad;
    } else if (strcmp(ty, "log") == 0 || strcmp(ty, "error") == 0) {
        out->type = ty[0] == 'l' ? PORT_CMD_LOG : PORT_CMD_ERROR;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "msg");
        what = "msg";
        if (!cJSON_IsString(m))
            goto bad;
        out->level = out->type == PORT_CMD_ERROR ? MB_LOG_ERROR : MB_LOG_INFO;
        const cJSON *lv = cJSON_GetObjectItemCaseSensitive(root, "level");
        if (lv != NULL) {
            what = "level";
            if (!cJSON_IsString(lv))
                goto bad;
            static const char *levels[] = { "debug", "info", "warn", "error" };
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(lv->valuestring, levels[i]) == 0)
                    found = i;
            if (found < 0)
                goto bad;
            out->level = found;
        }
        out->text = strdup(m->valuestring);
        if (out->text == NULL) {
            rc = MB_ENOMEM;
            goto bad;
        }
    } else if (strcmp(ty, "checkpoint") == 0) {
        out->type = PORT_CMD_CHECKPOINT;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
        what = "data";
        if (!cJSON_IsString(d))
            goto bad;
        if ((rc = port_b64_decode(d->valuestring, strlen(d->valuestring), &out->data, &out->len)) !=
            0)
            goto bad;
    } else if (strcmp(ty, "vote") == 0) {
        out->type = PORT_CMD_VOTE;
        what = "proposal";
        if (parse_uint(cJSON_GetObjectItemCaseSensitive(root, "proposal"), 9007199254740992.0,
                       &out->proposal) != 0)
            goto bad;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "accept");
        what = "accept";
        if (!cJSON_IsBool(a))
            goto bad;
        out->accept = cJSON_IsTrue(a) ? 1 : 0;
    } else if (strcmp(ty, "set") == 0 || strcmp(ty, "propose") == 0) {
        out->type = ty[0] == 's' ? PORT_CMD_SET : PORT_CMD_PROPOSE;
        if (out->type == PORT_CMD_PROPOSE) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "ref");
            what = "ref";
            if (r != NULL && parse_uint(r, 9007199254740992.0, &out->ref) != 0)
                goto bad;
        }
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "name");
        what = "name";
        if (!cJSON_IsString(n) || n->valuestring[0] == '\0')
            goto bad;
        what = "value";
        if ((rc = parse_value(cJSON_GetObjectItemCaseSensitive(root, "value"), &out->value)) != 0)
            goto bad;
        out->text = strdup(n->valuestring);
        if (out->text == NULL) {
            rc = MB_ENOMEM;
            goto bad;
        }
    } else {
        what = "type (unknown)";
        goto bad;
    }
    cJSON_Delete(root);
    return 0;
bad:
    cJSON_Delete(root);
    port_cmd_free(out);
    if (rc == 0)
        rc = MB_EPROTO;
    return mb_errorf(err, rc, "port line: bad or missing field '%s'", what);
}

/* ---- encoders ---- */

static char *finish(cJSON *o)
{
    if (o == NULL)
        return NULL;
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *line = malloc(n + 2);
    if (line != NULL) {
        memcpy(line, s, n);
        line[n] = '\n';
        line[n + 1] = '\0';
    }
    cJSON_free(s);
    return line;
}

static int add_id(cJSON *o, const char *key, mb_agent_id id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llx", (unsigned long long)id);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static int utf8_text(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int add_data(cJSON *o, const void *data, size_t len)
{
    if (utf8_text(data, len)) {
        char *s = malloc(len + 1);
        if (s == NULL)
            return 0;
        if (len > 0)
            memcpy(s, data, len);
        s[len] = '\0';
        int ok = cJSON_AddStringToObject(o, "data", s) != NULL;
        free(s);
        return ok;
    }
    char *b = port_b64_encode(data, len);
    if (b == NULL)
        return 0;
    int ok = cJSON_AddStringToObject(o, "data_b64", b) != NULL;
    free(b);
    return ok;
}

char *port_encode_init(mb_agent_id self, const char *config, const void *ckpt, size_t ckpt_len)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "type", "init") && add_id(o, "id", self) &&
             cJSON_AddStringToObject(o, "config", config ? config : "");
    if (ok && ckpt != NULL) {
        char *b = port_b64_encode(ckpt, ckpt_len);
        ok = b && cJSON_AddStringToObject(o, "checkpoint", b);
        free(b);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}

char *port_encode_message(mb_agent_id from, uint32_t type, uint32_t tag, const void *data,
                          size_t len)
{
    static const char *names[] = { "message", "timer", "down", "exit", "undelivered" };
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "type", type < 5 ? names[type] : "message") &&
             add_id(o, "from", from) && cJSON_AddNumberToObject(o, "tag", tag) &&
             add_data(o, data, len);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}

static cJSON *value_json(const mb_value *v)
{
    switch (v->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        return cJSON_CreateNumber(v->u.f);
    case MB_VT_INT:
        return cJSON_CreateNumber((double)v->u.i);
    case MB_VT_BOOL:
        return cJSON_CreateBool(v->u.b);
    case MB_VT_CHOICE:
        return cJSON_CreateString(v->u.choice ? v->u.choice : "");
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        return cJSON_CreateDoubleArray(v->u.vec.data, (int)v->u.vec.n);
    case MB_VT_TENSOR: {
        cJSON *t = cJSON_CreateObject();
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (uint32_t i = 0; shape && i < v->u.tensor.ndim; i++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber(v->u.tensor.shape[i]));
        cJSON_AddItemToObject(t, "data",
                              cJSON_CreateFloatArray(v->u.tensor.data, (int)v->u.tensor.n));
        return t;
    }
    default:
        return cJSON_CreateNull();
    }
}

char *port_encode_variable(const char *name, const mb_value *v, uint64_t version)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "type", "variable") &&
             cJSON_AddStringToObject(o, "name", name) &&
             cJSON_AddNumberToObject(o, "version", (double)version);
    cJSON *val = ok ? value_json(v) : NULL;
    if (val == NULL || !cJSON_AddItemToObject(o, "value", val)) {
        cJSON_Delete(val);
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}

char *port_encode_vote(const mb_proposal *p)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "type", "vote") &&
             cJSON_AddNumberToObject(o, "proposal", (double)p->id) &&
             cJSON_AddStringToObject(o, "variable", p->variable) &&
             add_id(o, "proposer", p->proposer ? p->proposer : 1);
    cJSON *val = ok ? value_json(p->value) : NULL;
    if (val == NULL || !cJSON_AddItemToObject(o, "value", val)) {
        cJSON_Delete(val);
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}

char *port_encode_proposed(uint64_t ref, uint64_t proposal, int rc, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "type", "proposed") &&
             cJSON_AddNumberToObject(o, "ref", (double)ref);
    if (ok && rc == MB_OK)
        ok = cJSON_AddNumberToObject(o, "proposal", (double)proposal) != NULL;
    else if (ok)
        ok = cJSON_AddStringToObject(o, "error", mb_errname(rc)) &&
             cJSON_AddStringToObject(o, "msg", msg != NULL ? msg : mb_strerror(rc));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}

char *port_encode_simple(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "type", type) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return finish(o);
}
