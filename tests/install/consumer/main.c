#include <limn/limn.h>
#include <stdio.h>
int main(void) {
    int32_t n = 0;
    if (limn_version_number() != LIMN_VERSION_NUMBER || limn_device_count(&n) != LIMN_OK || n < 1) return 1;
    printf("consumer_c: limn %s, %d device(s)\n", limn_version_string(), (int)n);
    return 0;
}
