/* Protobuf-c encoding of commands, results, values and specs (the formats
 * of docs/consensus.md). Decoders are defensive: every input is outside
 * input (raft log, mesh). */
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "consensus/internal.h"

#define CMD_FORMAT 1

char *cs_strdup_or_null(const char *s, int *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = 0;
    return d;
}

/* ---- values ---- */

void cs_value_to_pb(const mb_value *v, Mabeam__Value *pb)
{
    mabeam__value__init(pb);
    pb->has_type = 1;
    pb->type = (uint32_t)v->type;
    switch (v->type) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        pb->has_f = 1;
        pb->f = v->u.f;
        break;
    case MB_VT_INT:
        pb->has_i = 1;
        pb->i = v->u.i;
        break;
    case MB_VT_BOOL:
        pb->has_b = 1;
        pb->b = v->u.b != 0;
        break;
    case MB_VT_CHOICE:
        pb->choice = v->u.choice;
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        pb->n_vec = v->u.vec.n;
        pb->vec = v->u.vec.data;
        break;
    case MB_VT_TENSOR:
        pb->n_shape = v->u.tensor.ndim;
        pb->shape = v->u.tensor.shape;
        pb->n_tensor = (size_t)v->u.tensor.n;
        pb->tensor = v->u.tensor.data;
        break;
    default:
        break;
    }
}

int cs_value_from_pb(const Mabeam__Value *pb, mb_value *out, mb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (pb == NULL || !pb->has_type || pb->type < MB_VT_FLOAT || pb->type > MB_VT_TENSOR)
        return mb_errorf(err, MB_EPROTO, "value has no known type");
    mb_vtype t = (mb_vtype)pb->type;
    int fl = t == MB_VT_FLOAT || t == MB_VT_PROBABILITY;
    int vec = t == MB_VT_DISTRIBUTION || t == MB_VT_EMBEDDING;
    if (pb->has_f != fl || pb->has_i != (t == MB_VT_INT) || pb->has_b != (t == MB_VT_BOOL) ||
        (pb->choice != NULL) != (t == MB_VT_CHOICE) || (!vec && pb->n_vec != 0) ||
        (t != MB_VT_TENSOR && (pb->n_shape != 0 || pb->n_tensor != 0)))
        return mb_errorf(err, MB_EPROTO, "%s value has missing or foreign fields",
                         mb_vtype_name(t));
    mb_value v = { .type = t };
    switch (t) {
    case MB_VT_FLOAT:
    case MB_VT_PROBABILITY:
        v.u.f = pb->f;
        break;
    case MB_VT_INT:
        v.u.i = pb->i;
        break;
    case MB_VT_BOOL:
        v.u.b = pb->b ? 1 : 0;
        break;
    case MB_VT_CHOICE:
        if (strlen(pb->choice) > MB_CHOICE_OPTION_MAX)
            return mb_errorf(err, MB_EPROTO, "choice value longer than %d bytes",
                             MB_CHOICE_OPTION_MAX);
        if ((v.u.choice = strdup(pb->choice)) == NULL)
            return mb_errorf(err, MB_ENOMEM, "copy choice value");
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        if (pb->n_vec > MB_VEC_MAX_DIM)
            return mb_errorf(err, MB_EPROTO, "vector value longer than %d", MB_VEC_MAX_DIM);
        v.u.vec.n = (uint32_t)pb->n_vec;
        if (pb->n_vec > 0) {
            v.u.vec.data = malloc(pb->n_vec * sizeof(double));
            if (v.u.vec.data == NULL)
                return mb_errorf(err, MB_ENOMEM, "copy vector value");
            memcpy(v.u.vec.data, pb->vec, pb->n_vec * sizeof(double));
        }
        break;
    case MB_VT_TENSOR:
        if (pb->n_shape > MB_TENSOR_MAX_NDIM || pb->n_tensor > MB_TENSOR_MAX_ELEMENTS)
            return mb_errorf(err, MB_EPROTO, "tensor value too large");
        v.u.tensor.ndim = (uint32_t)pb->n_shape;
        v.u.tensor.n = pb->n_tensor;
        if (pb->n_shape > 0) {
            v.u.tensor.shape = malloc(pb->n_shape * sizeof(uint32_t));
            if (v.u.tensor.shape == NULL)
                goto err_nomem;
            memcpy(v.u.tensor.shape, pb->shape, pb->n_shape * sizeof(uint32_t));
        }
        if (pb->n_tensor > 0) {
            v.u.tensor.data = malloc(pb->n_tensor * sizeof(float));
            if (v.u.tensor.data == NULL)
                goto err_nomem;
            memcpy(v.u.tensor.data, pb->tensor, pb->n_tensor * sizeof(float));
        }
        break;
    default:
        break;
    }
    *out = v;
    return MB_OK;

err_nomem:
    mb_value_free(&v);
    return mb_errorf(err, MB_ENOMEM, "copy tensor value");
}

/* ---- specs ---- */

void cs_spec_to_pb(const mb_var_spec *s, Mabeam__VarSpec *pb)
{
    mabeam__var_spec__init(pb);
    pb->has_type = 1;
    pb->type = (uint32_t)s->type;
    switch (s->type) {
    case MB_VT_FLOAT:
        pb->has_min = pb->has_max = 1;
        pb->min = s->min;
        pb->max = s->max;
        pb->has_log_scale = s->log_scale != 0;
        pb->log_scale = s->log_scale != 0;
        break;
    case MB_VT_INT:
        pb->has_imin = pb->has_imax = 1;
        pb->imin = s->imin;
        pb->imax = s->imax;
        pb->has_step = s->step != 0;
        pb->step = s->step;
        break;
    case MB_VT_CHOICE:
        pb->n_options = s->n_options;
        pb->options = s->options;
        pb->n_weights = s->weights != NULL ? s->n_options : 0;
        pb->weights = s->weights;
        break;
    case MB_VT_DISTRIBUTION:
    case MB_VT_EMBEDDING:
        pb->has_dim = 1;
        pb->dim = s->dim;
        pb->has_unit_norm = s->unit_norm != 0;
        pb->unit_norm = s->unit_norm != 0;
        pb->has_tolerance = s->tolerance != 0;
        pb->tolerance = s->tolerance;
        break;
    case MB_VT_TENSOR:
        pb->n_shape = s->ndim;
        pb->shape = s->shape;
        pb->has_max_elements = s->max_elements != 0;
        pb->max_elements = s->max_elements;
        break;
    default:
        break;
    }
}

int cs_spec_from_pb(const Mabeam__VarSpec *pb, mb_var_spec *out, mb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (pb == NULL || !pb->has_type)
        return mb_errorf(err, MB_EPROTO, "variable spec has no type");
    if (pb->n_options > MB_CHOICE_MAX_OPTIONS || pb->n_shape > MB_TENSOR_MAX_NDIM ||
        (pb->n_weights != 0 && pb->n_weights != pb->n_options))
        return mb_errorf(err, MB_EPROTO, "variable spec has too many options or dimensions");
    mb_var_spec s = { 0 };
    s.type = pb->type <= MB_VT_TENSOR ? (mb_vtype)pb->type : MB_VT_NONE;
    if (s.type == MB_VT_NONE)
        return mb_errorf(err, MB_EPROTO, "variable spec has unknown type %u", pb->type);
    s.min = pb->min;
    s.max = pb->max;
    s.log_scale = pb->log_scale ? 1 : 0;
    s.imin = pb->imin;
    s.imax = pb->imax;
    s.step = pb->step;
    s.dim = pb->dim;
    s.unit_norm = pb->unit_norm ? 1 : 0;
    s.tolerance = pb->tolerance;
    s.max_elements = pb->max_elements;
    s.n_options = (uint32_t)pb->n_options;
    if (pb->n_options > 0) {
        s.options = calloc(pb->n_options, sizeof(char *));
        if (s.options == NULL)
            goto err_nomem;
        for (size_t i = 0; i < pb->n_options; i++) {
            if (strlen(pb->options[i]) > MB_CHOICE_OPTION_MAX) {
                mb_var_spec_free(&s);
                return mb_errorf(err, MB_EPROTO, "option %zu longer than %d bytes", i,
                                 MB_CHOICE_OPTION_MAX);
            }
            if ((s.options[i] = strdup(pb->options[i])) == NULL)
                goto err_nomem;
        }
    }
    if (pb->n_weights > 0) {
        s.weights = malloc(pb->n_weights * sizeof(double));
        if (s.weights == NULL)
            goto err_nomem;
        memcpy(s.weights, pb->weights, pb->n_weights * sizeof(double));
    }
    s.ndim = (uint32_t)pb->n_shape;
    if (pb->n_shape > 0) {
        s.shape = malloc(pb->n_shape * sizeof(uint32_t));
        if (s.shape == NULL)
            goto err_nomem;
        memcpy(s.shape, pb->shape, pb->n_shape * sizeof(uint32_t));
    }
    *out = s;
    return MB_OK;

err_nomem:
    mb_var_spec_free(&s);
    return mb_errorf(err, MB_ENOMEM, "copy variable spec");
}

/* ---- commands ---- */

/* placement: the protobuf form of cmd->items (borrowing their strings and
 * blobs); *items and *ptrs are malloc'd, owned by the caller. */
static int encode_items(const consensus_cmd *cmd, Mabeam__AgentItem **items,
                        Mabeam__AgentItem ***ptrs, mb_error *err)
{
    if (cmd->n_items > CONSENSUS_BATCH_MAX || (cmd->n_items > 0 && cmd->items == NULL))
        return mb_errorf(err, MB_EINVAL, "batch of %u entries (at most %d)", cmd->n_items,
                         CONSENSUS_BATCH_MAX);
    *items = calloc(cmd->n_items + 1, sizeof(**items));
    *ptrs = calloc(cmd->n_items + 1, sizeof(**ptrs));
    if (*items == NULL || *ptrs == NULL) {
        free(*items);
        free(*ptrs);
        *items = NULL;
        *ptrs = NULL;
        return mb_errorf(err, MB_ENOMEM, "encode batch of %u entries", cmd->n_items);
    }
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        const consensus_agent_item *in = &cmd->items[i];
        Mabeam__AgentItem *o = &(*items)[i];
        mabeam__agent_item__init(o);
        o->id = in->id;
        o->has_node = in->node != 0;
        o->node = in->node;
        o->has_generation = 1;
        o->generation = in->generation;
        o->has_status = cmd->kind == CONSENSUS_CMD_AGENT_STATUS_BATCH;
        o->status = (uint32_t)in->status;
        o->has_blob = cmd->kind == CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH || in->has_blob;
        o->blob.data = in->blob;
        o->blob.len = in->blob_len;
        (*ptrs)[i] = o;
    }
    return MB_OK;
}

/* placement: decode batch entries into d->items. */
static int decode_items(consensus_cmd *d, Mabeam__AgentItem *const *in, size_t n, mb_error *err)
{
    if (n == 0 || n > CONSENSUS_BATCH_MAX)
        return mb_errorf(err, MB_EPROTO, "batch of %zu entries (1..%d)", n, CONSENSUS_BATCH_MAX);
    d->items = calloc(n, sizeof(*d->items));
    if (d->items == NULL)
        return mb_errorf(err, MB_ENOMEM, "decode batch of %zu entries", n);
    d->n_items = (uint32_t)n;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        consensus_agent_item *o = &d->items[i];
        o->id = cs_strdup_or_null(in[i]->id, &ok);
        o->node = in[i]->node;
        o->generation = in[i]->generation;
        if (in[i]->status > CONSENSUS_AGENT_CRASHED)
            return mb_errorf(err, MB_EPROTO, "agent status %u unknown", in[i]->status);
        o->status = (consensus_agent_status)in[i]->status;
        if (in[i]->has_blob) {
            if (in[i]->blob.len > CONSENSUS_CHECKPOINT_MAX)
                return mb_errorf(err, MB_ETOOBIG, "checkpoint of %zu bytes above the limit %u",
                                 in[i]->blob.len, CONSENSUS_CHECKPOINT_MAX);
            o->has_blob = 1;
            o->blob_len = in[i]->blob.len;
            if (o->blob_len > 0 && (o->blob = malloc(o->blob_len)) == NULL)
                ok = 0;
            else if (o->blob_len > 0)
                memcpy(o->blob, in[i]->blob.data, o->blob_len);
        }
    }
    return ok ? MB_OK : mb_errorf(err, MB_ENOMEM, "decode batch of %zu entries", n);
}

int consensus_cmd_encode(const consensus_cmd *cmd, void *(*alloc_fn)(size_t), void **buf,
                         size_t *len, mb_error *err)
{
    Mabeam__Command c = MABEAM__COMMAND__INIT;
    Mabeam__VarDefine vd = MABEAM__VAR_DEFINE__INIT;
    Mabeam__VarSet vs = MABEAM__VAR_SET__INIT;
    Mabeam__VarDelete vdel = MABEAM__VAR_DELETE__INIT;
    Mabeam__NodeInfo ni = MABEAM__NODE_INFO__INIT;
    Mabeam__NodeUpdate nu = MABEAM__NODE_UPDATE__INIT;
    Mabeam__NodeRemove nr = MABEAM__NODE_REMOVE__INIT;
    Mabeam__AgentPlace ap = MABEAM__AGENT_PLACE__INIT;
    Mabeam__AgentReassign ar = MABEAM__AGENT_REASSIGN__INIT;
    Mabeam__AgentCheckpoint ac = MABEAM__AGENT_CHECKPOINT__INIT;
    Mabeam__AgentStatus as = MABEAM__AGENT_STATUS__INIT;
    Mabeam__AgentRemove arm = MABEAM__AGENT_REMOVE__INIT;
    Mabeam__ProposalOpen po = MABEAM__PROPOSAL_OPEN__INIT;
    Mabeam__ProposalVote pv = MABEAM__PROPOSAL_VOTE__INIT;
    Mabeam__ProposalClose pc = MABEAM__PROPOSAL_CLOSE__INIT;
    Mabeam__ProposalVotes pvb = MABEAM__PROPOSAL_VOTES__INIT; /* proposals piece */
    Mabeam__ProposalVote *pvs = NULL, **pvp = NULL;
    Mabeam__VarSpec spec;
    Mabeam__Value value;
    /* placement: batches */
    Mabeam__AgentStatusBatch asb = MABEAM__AGENT_STATUS_BATCH__INIT;
    Mabeam__AgentCheckpointBatch acb = MABEAM__AGENT_CHECKPOINT_BATCH__INIT;
    Mabeam__AgentMoveBatch amb = MABEAM__AGENT_MOVE_BATCH__INIT;
    Mabeam__AgentItem *items = NULL, **item_ptrs = NULL;
    int rc = MB_OK;
    cs_coord_pb coord_pb; /* coordination (piece: agents/coord) */

    *buf = NULL;
    *len = 0;
    if (alloc_fn == NULL)
        alloc_fn = malloc;
    c.has_format = 1;
    c.format = CMD_FORMAT;
    if (cmd->client_id != 0) {
        c.has_client_id = c.has_request_seq = 1;
        c.client_id = cmd->client_id;
        c.request_seq = cmd->request_seq;
    }
    c.by = cmd->by;
    switch (cmd->kind) {
    case CONSENSUS_CMD_VAR_DEFINE:
        c.body_case = MABEAM__COMMAND__BODY_VAR_DEFINE;
        c.var_define = &vd;
        vd.name = cmd->name;
        cs_spec_to_pb(&cmd->spec, &spec);
        vd.spec = &spec;
        vd.has_policy = 1;
        vd.policy = (uint32_t)cmd->policy;
        if (cmd->value.type != MB_VT_NONE) {
            cs_value_to_pb(&cmd->value, &value);
            vd.initial = &value;
        }
        break;
    case CONSENSUS_CMD_VAR_SET:
        c.body_case = MABEAM__COMMAND__BODY_VAR_SET;
        c.var_set = &vs;
        vs.name = cmd->name;
        if (cmd->value.type == MB_VT_NONE)
            return mb_errorf(err, MB_EINVAL, "set command without a value");
        cs_value_to_pb(&cmd->value, &value);
        vs.value = &value;
        vs.has_expected_version = cmd->has_expected != 0;
        vs.expected_version = cmd->expected;
        break;
    case CONSENSUS_CMD_VAR_DELETE:
        c.body_case = MABEAM__COMMAND__BODY_VAR_DELETE;
        c.var_delete = &vdel;
        vdel.name = cmd->name;
        vdel.has_expected_version = cmd->has_expected != 0;
        vdel.expected_version = cmd->expected;
        break;
    case CONSENSUS_CMD_NODE_ADD:
        c.body_case = MABEAM__COMMAND__BODY_NODE_ADD;
        c.node_add = &ni;
        ni.has_id = ni.has_role = ni.has_status = 1;
        ni.id = cmd->node.id;
        ni.raft_addr = cmd->node.raft_addr;
        ni.mesh_addr = cmd->node.mesh_addr;
        ni.api_addr = cmd->node.api_addr;
        ni.role = (uint32_t)cmd->node.role;
        ni.status = (uint32_t)cmd->node.status;
        break;
    case CONSENSUS_CMD_NODE_UPDATE:
        c.body_case = MABEAM__COMMAND__BODY_NODE_UPDATE;
        c.node_update = &nu;
        nu.has_id = 1;
        nu.id = cmd->node.id;
        if (cmd->node_fields & CONSENSUS_NODE_SET_RAFT_ADDR)
            nu.raft_addr = cmd->node.raft_addr != NULL ? cmd->node.raft_addr : "";
        if (cmd->node_fields & CONSENSUS_NODE_SET_MESH_ADDR)
            nu.mesh_addr = cmd->node.mesh_addr != NULL ? cmd->node.mesh_addr : "";
        if (cmd->node_fields & CONSENSUS_NODE_SET_API_ADDR)
            nu.api_addr = cmd->node.api_addr != NULL ? cmd->node.api_addr : "";
        nu.has_role = (cmd->node_fields & CONSENSUS_NODE_SET_ROLE) != 0;
        nu.role = (uint32_t)cmd->node.role;
        nu.has_status = (cmd->node_fields & CONSENSUS_NODE_SET_STATUS) != 0;
        nu.status = (uint32_t)cmd->node.status;
        break;
    case CONSENSUS_CMD_NODE_REMOVE:
        c.body_case = MABEAM__COMMAND__BODY_NODE_REMOVE;
        c.node_remove = &nr;
        nr.has_id = 1;
        nr.id = cmd->node.id;
        break;
    case CONSENSUS_CMD_AGENT_PLACE:
        c.body_case = MABEAM__COMMAND__BODY_AGENT_PLACE;
        c.agent_place = &ap;
        ap.id = cmd->agent_id;
        ap.kind = cmd->agent_kind;
        ap.config = cmd->agent_config;
        ap.has_node = 1;
        ap.node = cmd->agent_node;
        ap.n_caps = cmd->n_agent_caps;
        ap.caps = cmd->agent_caps;
        break;
    case CONSENSUS_CMD_AGENT_REASSIGN:
        c.body_case = MABEAM__COMMAND__BODY_AGENT_REASSIGN;
        c.agent_reassign = &ar;
        ar.id = cmd->agent_id;
        ar.has_node = 1;
        ar.node = cmd->agent_node;
        ar.has_expected_generation = cmd->has_expected != 0;
        ar.expected_generation = cmd->expected;
        break;
    case CONSENSUS_CMD_AGENT_CHECKPOINT:
        c.body_case = MABEAM__COMMAND__BODY_AGENT_CHECKPOINT;
        c.agent_checkpoint = &ac;
        ac.id = cmd->agent_id;
        ac.has_generation = ac.has_blob = 1;
        ac.generation = cmd->generation;
        ac.blob.data = cmd->blob;
        ac.blob.len = cmd->blob_len;
        break;
    case CONSENSUS_CMD_AGENT_STATUS:
        c.body_case = MABEAM__COMMAND__BODY_AGENT_STATUS;
        c.agent_status = &as;
        as.id = cmd->agent_id;
        as.has_generation = as.has_status = 1;
        as.generation = cmd->generation;
        as.status = (uint32_t)cmd->agent_status;
        break;
    case CONSENSUS_CMD_AGENT_REMOVE:
        c.body_case = MABEAM__COMMAND__BODY_AGENT_REMOVE;
        c.agent_remove = &arm;
        arm.id = cmd->agent_id;
        break;
    case CONSENSUS_CMD_PROPOSAL_OPEN:
        c.body_case = MABEAM__COMMAND__BODY_PROPOSAL_OPEN;
        c.proposal_open = &po;
        po.id = cmd->proposal_id;
        po.variable = cmd->name;
        if (cmd->value.type == MB_VT_NONE)
            return mb_errorf(err, MB_EINVAL, "proposal without a value");
        cs_value_to_pb(&cmd->value, &value);
        po.value = &value;
        po.has_rule = 1;
        po.rule = (uint32_t)cmd->rule;
        po.has_fraction = cmd->fraction != 0;
        po.fraction = cmd->fraction;
        po.n_voters = cmd->n_voters;
        po.voters = cmd->voters;
        po.n_weights = cmd->weights != NULL ? cmd->n_voters : 0;
        po.weights = cmd->weights;
        po.has_deadline_ms = 1;
        po.deadline_ms = cmd->deadline_ms;
        po.has_f = cmd->f != 0;
        po.f = cmd->f;
        break;
    case CONSENSUS_CMD_PROPOSAL_VOTE:
        c.body_case = MABEAM__COMMAND__BODY_PROPOSAL_VOTE;
        c.proposal_vote = &pv;
        pv.id = cmd->proposal_id;
        pv.voter = cmd->voter;
        pv.has_yes = 1;
        pv.yes = cmd->yes != 0;
        break;
    case CONSENSUS_CMD_PROPOSAL_CLOSE:
        c.body_case = MABEAM__COMMAND__BODY_PROPOSAL_CLOSE;
        c.proposal_close = &pc;
        pc.id = cmd->proposal_id;
        pc.has_outcome = 1;
        pc.outcome = (uint32_t)cmd->outcome;
        break;
    case CONSENSUS_CMD_PROPOSAL_VOTES: /* proposals piece */
        if (cmd->n_votes == 0 || cmd->n_votes > CONSENSUS_VOTE_BATCH_MAX || cmd->votes == NULL)
            return mb_errorf(err, MB_EINVAL, "a vote batch holds 1..%d votes",
                             CONSENSUS_VOTE_BATCH_MAX);
        pvs = calloc(cmd->n_votes, sizeof(*pvs));
        pvp = calloc(cmd->n_votes, sizeof(*pvp));
        if (pvs == NULL || pvp == NULL) {
            free(pvs);
            free(pvp);
            return mb_errorf(err, MB_ENOMEM, "encode vote batch");
        }
        for (uint32_t i = 0; i < cmd->n_votes; i++) {
            mabeam__proposal_vote__init(&pvs[i]);
            pvs[i].id = cmd->votes[i].proposal_id;
            pvs[i].voter = cmd->votes[i].voter;
            pvs[i].has_yes = 1;
            pvs[i].yes = cmd->votes[i].yes != 0;
            pvp[i] = &pvs[i];
        }
        pvb.n_votes = cmd->n_votes;
        pvb.votes = pvp;
        c.body_case = MABEAM__COMMAND__BODY_PROPOSAL_VOTES;
        c.proposal_votes = &pvb;
        break;
    case CONSENSUS_CMD_AGENT_STATUS_BATCH:
    case CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH:
    case CONSENSUS_CMD_AGENT_MOVE_BATCH:
        if ((rc = encode_items(cmd, &items, &item_ptrs, err)) != MB_OK)
            return rc;
        if (cmd->kind == CONSENSUS_CMD_AGENT_STATUS_BATCH) {
            c.body_case = MABEAM__COMMAND__BODY_AGENT_STATUS_BATCH;
            c.agent_status_batch = &asb;
            asb.n_items = cmd->n_items;
            asb.items = item_ptrs;
        } else if (cmd->kind == CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH) {
            c.body_case = MABEAM__COMMAND__BODY_AGENT_CHECKPOINT_BATCH;
            c.agent_checkpoint_batch = &acb;
            acb.n_items = cmd->n_items;
            acb.items = item_ptrs;
        } else {
            c.body_case = MABEAM__COMMAND__BODY_AGENT_MOVE_BATCH;
            c.agent_move_batch = &amb;
            amb.n_items = cmd->n_items;
            amb.items = item_ptrs;
            amb.has_down_node = cmd->down_node != 0;
            amb.down_node = cmd->down_node;
        }
        break;
    default:
        if (cmd->kind >= CONSENSUS_CMD_STUDY_CREATE && cmd->kind <= CONSENSUS_CMD_TRIAL_REQUEUE)
            return cs_study_cmd_pack(cmd, &c, alloc_fn, buf, len, err); /* piece "studies" */
        if (cs_coord_cmd_to_pb(cmd, &c, &coord_pb) == 0)
            break; /* coordination (piece: agents/coord) */
        return mb_errorf(err, MB_EINVAL, "unknown command kind %d", (int)cmd->kind);
    }
    size_t n = mabeam__command__get_packed_size(&c);
    uint8_t *out = alloc_fn(n > 0 ? n : 1);
    if (out == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "encode command of %zu bytes", n);
    } else {
        mabeam__command__pack(&c, out);
        *buf = out;
        *len = n;
    }
    free(pvs);
    free(pvp);
    free(items);
    free(item_ptrs);
    return rc;
}

void consensus_cmd_free(consensus_cmd *cmd)
{
    if (cmd == NULL)
        return;
    free(cmd->by);
    free(cmd->name);
    mb_var_spec_free(&cmd->spec);
    mb_value_free(&cmd->value);
    free(cmd->node.raft_addr);
    free(cmd->node.mesh_addr);
    free(cmd->node.api_addr);
    free(cmd->agent_id);
    free(cmd->agent_kind);
    free(cmd->agent_config);
    free(cmd->blob);
    free(cmd->proposal_id);
    if (cmd->voters != NULL)
        for (uint32_t i = 0; i < cmd->n_voters; i++)
            free(cmd->voters[i]);
    free(cmd->voters);
    free(cmd->weights);
    free(cmd->voter);
    if (cmd->votes != NULL)
        for (uint32_t i = 0; i < cmd->n_votes; i++) {
            free(cmd->votes[i].proposal_id);
            free(cmd->votes[i].voter);
        }
    free(cmd->votes);
    if (cmd->agent_caps != NULL)
        for (uint32_t i = 0; i < cmd->n_agent_caps; i++)
            free(cmd->agent_caps[i]);
    free(cmd->agent_caps);
    if (cmd->items != NULL)
        for (uint32_t i = 0; i < cmd->n_items; i++) {
            free(cmd->items[i].id);
            free(cmd->items[i].blob);
        }
    free(cmd->items);
    free(cmd->coord.name);         /* coordination (piece: agents/coord) */
    cs_study_cmd_free(cmd->study); /* piece "studies" */
    free(cmd->coord.holder);
    memset(cmd, 0, sizeof(*cmd));
}

/* Copy the strings of a node message into the command. */
static int dup_node_strings(consensus_cmd *c, const char *raft, const char *mesh, const char *api)
{
    int ok = 1;
    c->node.raft_addr = cs_strdup_or_null(raft, &ok);
    c->node.mesh_addr = cs_strdup_or_null(mesh, &ok);
    c->node.api_addr = cs_strdup_or_null(api, &ok);
    return ok;
}

int consensus_cmd_decode(const void *buf, size_t len, consensus_cmd *out, mb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len == 0)
        return mb_errorf(err, MB_EPROTO, "empty command");
    Mabeam__Command *c = mabeam__command__unpack(NULL, len, buf);
    if (c == NULL)
        return mb_errorf(err, MB_EPROTO, "command of %zu bytes is not a valid protobuf", len);
    int rc = MB_OK, ok = 1;
    consensus_cmd d = { 0 };
    if (!c->has_format || c->format != CMD_FORMAT) {
        rc = mb_errorf(err, MB_EPROTO, "command format %u is not %d", c->format, CMD_FORMAT);
        goto out;
    }
    if (c->has_client_id != c->has_request_seq || (c->has_client_id && c->client_id == 0)) {
        rc = mb_errorf(err, MB_EPROTO, "command has a partial idempotency id");
        goto out;
    }
    d.client_id = c->client_id;
    d.request_seq = c->request_seq;
    d.by = cs_strdup_or_null(c->by, &ok);
    switch (c->body_case) {
    case MABEAM__COMMAND__BODY_VAR_DEFINE: {
        Mabeam__VarDefine *m = c->var_define;
        d.kind = CONSENSUS_CMD_VAR_DEFINE;
        d.name = cs_strdup_or_null(m->name, &ok);
        if (!m->has_policy || m->policy > MB_POLICY_CONSENSUS) {
            rc = mb_errorf(err, MB_EPROTO, "define command without a known policy");
            goto out;
        }
        d.policy = (mb_var_policy)m->policy;
        if ((rc = cs_spec_from_pb(m->spec, &d.spec, err)) != MB_OK)
            goto out;
        if (m->initial != NULL && (rc = cs_value_from_pb(m->initial, &d.value, err)) != MB_OK)
            goto out;
        break;
    }
    case MABEAM__COMMAND__BODY_VAR_SET: {
        Mabeam__VarSet *m = c->var_set;
        d.kind = CONSENSUS_CMD_VAR_SET;
        d.name = cs_strdup_or_null(m->name, &ok);
        d.has_expected = m->has_expected_version;
        d.expected = m->expected_version;
        if ((rc = cs_value_from_pb(m->value, &d.value, err)) != MB_OK)
            goto out;
        break;
    }
    case MABEAM__COMMAND__BODY_VAR_DELETE: {
        Mabeam__VarDelete *m = c->var_delete;
        d.kind = CONSENSUS_CMD_VAR_DELETE;
        d.name = cs_strdup_or_null(m->name, &ok);
        d.has_expected = m->has_expected_version;
        d.expected = m->expected_version;
        break;
    }
    case MABEAM__COMMAND__BODY_NODE_ADD: {
        Mabeam__NodeInfo *m = c->node_add;
        d.kind = CONSENSUS_CMD_NODE_ADD;
        d.node.id = m->id;
        d.node.role = (consensus_node_role)m->role;
        d.node.status = (consensus_node_status)m->status;
        if (m->role > CONSENSUS_ROLE_STANDBY || m->status > CONSENSUS_NODE_DRAINING) {
            rc = mb_errorf(err, MB_EPROTO, "node command with unknown role or status");
            goto out;
        }
        ok = ok && dup_node_strings(&d, m->raft_addr, m->mesh_addr, m->api_addr);
        break;
    }
    case MABEAM__COMMAND__BODY_NODE_UPDATE: {
        Mabeam__NodeUpdate *m = c->node_update;
        d.kind = CONSENSUS_CMD_NODE_UPDATE;
        d.node.id = m->id;
        if (m->role > CONSENSUS_ROLE_STANDBY || m->status > CONSENSUS_NODE_DRAINING) {
            rc = mb_errorf(err, MB_EPROTO, "node command with unknown role or status");
            goto out;
        }
        d.node.role = (consensus_node_role)m->role;
        d.node.status = (consensus_node_status)m->status;
        d.node_fields = (m->raft_addr ? CONSENSUS_NODE_SET_RAFT_ADDR : 0) |
                        (m->mesh_addr ? CONSENSUS_NODE_SET_MESH_ADDR : 0) |
                        (m->api_addr ? CONSENSUS_NODE_SET_API_ADDR : 0) |
                        (m->has_role ? CONSENSUS_NODE_SET_ROLE : 0) |
                        (m->has_status ? CONSENSUS_NODE_SET_STATUS : 0);
        ok = ok && dup_node_strings(&d, m->raft_addr, m->mesh_addr, m->api_addr);
        break;
    }
    case MABEAM__COMMAND__BODY_NODE_REMOVE:
        d.kind = CONSENSUS_CMD_NODE_REMOVE;
        d.node.id = c->node_remove->id;
        break;
    case MABEAM__COMMAND__BODY_AGENT_PLACE: {
        Mabeam__AgentPlace *m = c->agent_place;
        d.kind = CONSENSUS_CMD_AGENT_PLACE;
        d.agent_id = cs_strdup_or_null(m->id, &ok);
        d.agent_kind = cs_strdup_or_null(m->kind, &ok);
        d.agent_config = cs_strdup_or_null(m->config, &ok);
        d.agent_node = m->node;
        if (m->n_caps > CONSENSUS_CAPS_MAX) {
            rc = mb_errorf(err, MB_EPROTO, "agent with %zu capabilities (at most %d)", m->n_caps,
                           CONSENSUS_CAPS_MAX);
            goto out;
        }
        if (m->n_caps > 0) {
            if ((d.agent_caps = calloc(m->n_caps, sizeof(char *))) == NULL) {
                ok = 0;
                break;
            }
            d.n_agent_caps = (uint32_t)m->n_caps;
            for (size_t i = 0; i < m->n_caps; i++)
                d.agent_caps[i] = cs_strdup_or_null(m->caps[i], &ok);
        }
        break;
    }
    case MABEAM__COMMAND__BODY_AGENT_REASSIGN: {
        Mabeam__AgentReassign *m = c->agent_reassign;
        d.kind = CONSENSUS_CMD_AGENT_REASSIGN;
        d.agent_id = cs_strdup_or_null(m->id, &ok);
        d.agent_node = m->node;
        d.has_expected = m->has_expected_generation;
        d.expected = m->expected_generation;
        break;
    }
    case MABEAM__COMMAND__BODY_AGENT_CHECKPOINT: {
        Mabeam__AgentCheckpoint *m = c->agent_checkpoint;
        d.kind = CONSENSUS_CMD_AGENT_CHECKPOINT;
        d.agent_id = cs_strdup_or_null(m->id, &ok);
        d.generation = m->generation;
        if (m->blob.len > CONSENSUS_CHECKPOINT_MAX) {
            rc = mb_errorf(err, MB_ETOOBIG, "checkpoint of %zu bytes above the limit %u",
                           m->blob.len, CONSENSUS_CHECKPOINT_MAX);
            goto out;
        }
        d.blob_len = m->blob.len;
        if (m->blob.len > 0) {
            d.blob = malloc(m->blob.len);
            if (d.blob == NULL)
                ok = 0;
            else
                memcpy(d.blob, m->blob.data, m->blob.len);
        }
        break;
    }
    case MABEAM__COMMAND__BODY_AGENT_STATUS: {
        Mabeam__AgentStatus *m = c->agent_status;
        d.kind = CONSENSUS_CMD_AGENT_STATUS;
        d.agent_id = cs_strdup_or_null(m->id, &ok);
        d.generation = m->generation;
        if (m->status > CONSENSUS_AGENT_CRASHED) {
            rc = mb_errorf(err, MB_EPROTO, "agent status %u unknown", m->status);
            goto out;
        }
        d.agent_status = (consensus_agent_status)m->status;
        break;
    }
    case MABEAM__COMMAND__BODY_AGENT_REMOVE:
        d.kind = CONSENSUS_CMD_AGENT_REMOVE;
        d.agent_id = cs_strdup_or_null(c->agent_remove->id, &ok);
        break;
    case MABEAM__COMMAND__BODY_PROPOSAL_OPEN: {
        Mabeam__ProposalOpen *m = c->proposal_open;
        d.kind = CONSENSUS_CMD_PROPOSAL_OPEN;
        d.proposal_id = cs_strdup_or_null(m->id, &ok);
        d.name = cs_strdup_or_null(m->variable, &ok);
        if (!m->has_rule || m->rule > CONSENSUS_RULE_BYZANTINE ||
            m->n_voters > CONSENSUS_MAX_VOTERS ||
            (m->n_weights != 0 && m->n_weights != m->n_voters)) {
            rc = mb_errorf(err, MB_EPROTO, "proposal with a bad rule or voter list");
            goto out;
        }
        d.rule = (consensus_rule)m->rule;
        d.fraction = m->fraction;
        d.deadline_ms = m->deadline_ms;
        d.f = m->f;
        if (m->n_voters > 0) {
            d.voters = calloc(m->n_voters, sizeof(char *));
            if (d.voters == NULL) {
                ok = 0;
                break;
            }
            d.n_voters = (uint32_t)m->n_voters;
            for (size_t i = 0; i < m->n_voters; i++)
                d.voters[i] = cs_strdup_or_null(m->voters[i], &ok);
        }
        if (m->n_weights > 0) {
            d.weights = malloc(m->n_weights * sizeof(double));
            if (d.weights == NULL)
                ok = 0;
            else
                memcpy(d.weights, m->weights, m->n_weights * sizeof(double));
        }
        if ((rc = cs_value_from_pb(m->value, &d.value, err)) != MB_OK)
            goto out;
        break;
    }
    case MABEAM__COMMAND__BODY_PROPOSAL_VOTE:
        d.kind = CONSENSUS_CMD_PROPOSAL_VOTE;
        d.proposal_id = cs_strdup_or_null(c->proposal_vote->id, &ok);
        d.voter = cs_strdup_or_null(c->proposal_vote->voter, &ok);
        d.yes = c->proposal_vote->yes ? 1 : 0;
        break;
    case MABEAM__COMMAND__BODY_PROPOSAL_CLOSE:
        d.kind = CONSENSUS_CMD_PROPOSAL_CLOSE;
        d.proposal_id = cs_strdup_or_null(c->proposal_close->id, &ok);
        if (c->proposal_close->outcome > CONSENSUS_PROPOSAL_CANCELLED) {
            rc = mb_errorf(err, MB_EPROTO, "proposal outcome %u unknown",
                           c->proposal_close->outcome);
            goto out;
        }
        d.outcome = (consensus_outcome)c->proposal_close->outcome;
        break;
    case MABEAM__COMMAND__BODY_PROPOSAL_VOTES: { /* proposals piece */
        Mabeam__ProposalVotes *m = c->proposal_votes;
        d.kind = CONSENSUS_CMD_PROPOSAL_VOTES;
        if (m->n_votes == 0 || m->n_votes > CONSENSUS_VOTE_BATCH_MAX) {
            rc = mb_errorf(err, MB_EPROTO, "vote batch of %zu votes (1..%d)", m->n_votes,
                           CONSENSUS_VOTE_BATCH_MAX);
            goto out;
        }
        d.votes = calloc(m->n_votes, sizeof(*d.votes));
        if (d.votes == NULL) {
            ok = 0;
            break;
        }
        d.n_votes = (uint32_t)m->n_votes;
        for (size_t i = 0; i < m->n_votes; i++) {
            d.votes[i].proposal_id = cs_strdup_or_null(m->votes[i]->id, &ok);
            d.votes[i].voter = cs_strdup_or_null(m->votes[i]->voter, &ok);
            d.votes[i].yes = m->votes[i]->yes ? 1 : 0;
        }
        break;
    }
    case MABEAM__COMMAND__BODY_AGENT_STATUS_BATCH:
        d.kind = CONSENSUS_CMD_AGENT_STATUS_BATCH;
        if ((rc = decode_items(&d, c->agent_status_batch->items, c->agent_status_batch->n_items,
                               err)) != MB_OK)
            goto out;
        break;
    case MABEAM__COMMAND__BODY_AGENT_CHECKPOINT_BATCH:
        d.kind = CONSENSUS_CMD_AGENT_CHECKPOINT_BATCH;
        if ((rc = decode_items(&d, c->agent_checkpoint_batch->items,
                               c->agent_checkpoint_batch->n_items, err)) != MB_OK)
            goto out;
        break;
    case MABEAM__COMMAND__BODY_AGENT_MOVE_BATCH:
        d.kind = CONSENSUS_CMD_AGENT_MOVE_BATCH;
        d.down_node = c->agent_move_batch->down_node;
        if ((c->agent_move_batch->n_items > 0 || d.down_node == 0) &&
            (rc = decode_items(&d, c->agent_move_batch->items, c->agent_move_batch->n_items,
                               err)) != MB_OK)
            goto out;
        break;
    default:
        if ((rc = cs_coord_cmd_from_pb(c, &d, &ok, err)) == 0)
            break; /* coordination (piece: agents/coord) */
        if (rc > 0)
            goto out;
        /* piece "studies" */
        if ((rc = cs_study_cmd_decode(c, &d, err)) == MB_ENOTSUP)
            rc = mb_errorf(err, MB_EPROTO, "command has no known body");
        if (rc != MB_OK)
            goto out;
        break;
    }
    if (!ok)
        rc = mb_errorf(err, MB_ENOMEM, "decode command");

out:
    mabeam__command__free_unpacked(c, NULL);
    if (rc != MB_OK)
        consensus_cmd_free(&d);
    else
        *out = d;
    return rc;
}

/* ---- results ---- */

int consensus_result_encode(const consensus_result *res, void **buf, size_t *len)
{
    Mabeam__Result r = MABEAM__RESULT__INIT;
    r.has_code = 1;
    r.code = (uint32_t)res->code;
    r.message = (char *)res->msg;
    r.has_version = res->version != 0;
    r.version = res->version;
    r.has_leader_id = res->leader_id != 0;
    r.leader_id = res->leader_id;
    r.leader_addr = res->leader_addr[0] ? (char *)res->leader_addr : NULL;
    size_t n = mabeam__result__get_packed_size(&r);
    uint8_t *out = malloc(n > 0 ? n : 1);
    if (out == NULL)
        return MB_ENOMEM;
    mabeam__result__pack(&r, out);
    *buf = out;
    *len = n;
    return MB_OK;
}

int consensus_result_decode(const void *buf, size_t len, consensus_result *out)
{
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len == 0)
        return MB_EPROTO;
    Mabeam__Result *r = mabeam__result__unpack(NULL, len, buf);
    if (r == NULL)
        return MB_EPROTO;
    int rc = MB_OK;
    if (!r->has_code || r->code >= MB_ERR_COUNT_ ||
        (r->leader_addr != NULL && strlen(r->leader_addr) > CONSENSUS_ADDR_MAX)) {
        rc = MB_EPROTO;
        goto out;
    }
    out->code = (int)r->code;
    out->version = r->version;
    out->leader_id = r->leader_id;
    if (r->leader_addr != NULL)
        snprintf(out->leader_addr, sizeof(out->leader_addr), "%s", r->leader_addr);
    if (r->message != NULL)
        snprintf(out->msg, sizeof(out->msg), "%s", r->message);
out:
    mabeam__result__free_unpacked(r, NULL);
    if (rc != MB_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
