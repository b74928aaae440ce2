#include "gw/logpos.h"

#include <limits.h>

long long gw_log_pos(long long attempt, long long seq)
{
    return (attempt << GW_LOG_POS_SEQ_BITS) + seq;
}

void gw_log_pos_split(long long pos, long long *attempt, long long *seq)
{
    *attempt = pos >> GW_LOG_POS_SEQ_BITS;
    *seq = pos & ((1LL << GW_LOG_POS_SEQ_BITS) - 1);
    if (*attempt > INT_MAX) {
        *attempt = INT_MAX;
        *seq = INT_MAX;
    }
}
