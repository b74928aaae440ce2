#include "gw/histo.h"

const double gw_histo_bounds[GW_HISTO_BOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const char *const gw_histo_bound_labels[GW_HISTO_BOUNDS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.0075", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",    "5",    "10"};

void gw_histo_observe(struct gw_histo *h, double seconds)
{
    size_t i = 0;
    if (!(seconds > 0)) /* negative, or NaN */
        seconds = 0;
    while (i < GW_HISTO_BOUNDS && seconds > gw_histo_bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

uint64_t gw_histo_cumulative(const struct gw_histo *h, size_t i)
{
    uint64_t n = 0;
    if (i > GW_HISTO_BOUNDS)
        i = GW_HISTO_BOUNDS;
    for (size_t k = 0; k <= i; k++)
        n += h->bucket[k];
    return n;
}
