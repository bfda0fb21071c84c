/*
 * mixq_requant_row.h - requantization of a row of int32 accumulators (one output pixel, all
 * channels) into packed 8/4/2-bit outputs. The loops are kept out of line so that they run from
 * registers whatever the caller's register pressure.
 */
#ifndef MIXQ_REQUANT_ROW_H
#define MIXQ_REQUANT_ROW_H

#include "mixq_internal.h"

/* Fill rq[0..n) from per-channel multipliers and shifts; returns 1 when every shift is < 0 (the
 * common case, requantized without a per-output branch). */
MIXQ_INLINE int32_t mixq_rq_fill(int32_t n, const mixq_per_channel_quant *q, mixq_rq *rq) {
    int32_t right_only = 1;
    for (int32_t c = 0; c < n; c++) {
        rq[c] = mixq_rq_make(q->multiplier[c], q->shift[c]);
        right_only &= rq[c].sh >= 0;
    }
    return right_only;
}

/* Requantize one pixel's accumulators (plus per-channel constant and a per-pixel correction) and
 * store them. Kept out of line so that the loops run from registers. */
#define MIXQ_RQ(c) mixq_clamp(mixq_rq_apply(accs[c] + cst[c] + corr, &rq[c]) + zp, lo, hi)
#define MIXQ_RQR(c) mixq_clamp(mixq_rq_apply_right(accs[c] + cst[c] + corr, &rq[c]) + zp, lo, hi)
#define MIXQ_ROW_ARGS                                                                                         \
    int32_t n, const int32_t *accs, const int32_t *cst, const mixq_rq *rq, int32_t corr, int32_t zp, int32_t lo, \
        int32_t hi, int32_t right_only

static MIXQ_NOINLINE void mixq_requant_row8(MIXQ_ROW_ARGS, int8_t *dst) {
    if (right_only) {
        for (int32_t c = 0; c < n; c++) {
            dst[c] = (int8_t)MIXQ_RQR(c);
        }
    } else {
        for (int32_t c = 0; c < n; c++) {
            dst[c] = (int8_t)MIXQ_RQ(c);
        }
    }
}

static MIXQ_NOINLINE void mixq_requant_row4(MIXQ_ROW_ARGS, uint8_t *dst) {
    if (right_only) {
        for (int32_t c = 0; c < n; c += 2) {
            dst[c >> 1] = (uint8_t)(MIXQ_RQR(c) | (MIXQ_RQR(c + 1) << 4));
        }
    } else {
        for (int32_t c = 0; c < n; c += 2) {
            dst[c >> 1] = (uint8_t)(MIXQ_RQ(c) | (MIXQ_RQ(c + 1) << 4));
        }
    }
}

static MIXQ_NOINLINE void mixq_requant_row2(MIXQ_ROW_ARGS, uint8_t *dst) {
    if (right_only) {
        for (int32_t c = 0; c < n; c += 4) {
            dst[c >> 2] = (uint8_t)(MIXQ_RQR(c) | (MIXQ_RQR(c + 1) << 2) | (MIXQ_RQR(c + 2) << 4) | (MIXQ_RQR(c + 3) << 6));
        }
    } else {
        for (int32_t c = 0; c < n; c += 4) {
            dst[c >> 2] = (uint8_t)(MIXQ_RQ(c) | (MIXQ_RQ(c + 1) << 2) | (MIXQ_RQ(c + 2) << 4) | (MIXQ_RQ(c + 3) << 6));
        }
    }
}

static MIXQ_NOINLINE void mixq_requant_row_any(int32_t OB, MIXQ_ROW_ARGS, uint8_t *out, int32_t o) {
    (void)right_only;
    for (int32_t c = 0; c < n; c++) {
        mixq_put_act(out, o + c, OB, MIXQ_RQ(c));
    }
}

/* Output elements o .. o+n of an OB-bit tensor from n accumulators (+ cst[c] + corr). */
MIXQ_INLINE void mixq_requant_row(int32_t OB, int32_t n, const int32_t *accs, const int32_t *cst, const mixq_rq *rq,
                                  int32_t corr, int32_t zp, int32_t lo, int32_t hi, int32_t right_only, uint8_t *out,
                                  int32_t o) {
    if (OB == 8) {
        mixq_requant_row8(n, accs, cst, rq, corr, zp, lo, hi, right_only, (int8_t *)out + o);
    } else if (OB == 4 && ((o | n) & 1) == 0) {
        mixq_requant_row4(n, accs, cst, rq, corr, zp, lo, hi, right_only, out + (o >> 1));
    } else if (OB == 2 && ((o | n) & 3) == 0) {
        mixq_requant_row2(n, accs, cst, rq, corr, zp, lo, hi, right_only, out + (o >> 2));
    } else {
        mixq_requant_row_any(OB, n, accs, cst, rq, corr, zp, lo, hi, right_only, out, o);
    }
}
#undef MIXQ_RQ
#undef MIXQ_RQR
#undef MIXQ_ROW_ARGS

#endif /* MIXQ_REQUANT_ROW_H */
