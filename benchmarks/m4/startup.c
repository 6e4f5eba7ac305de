/* Bare-metal start-up for the Cortex-M4 benchmark images: the vector table and a
   reset handler that copies .data from flash, zeroes .bss, turns the FPU on and
   calls main(). Nothing else runs before main (no C library start-up), so every
   instruction an emulator counts after main is entered belongs to the harness or
   the model. The symbols come from m4.ld. */
#include <stdint.h>

extern uint32_t _sidata[];
extern uint32_t _sdata[];
extern uint32_t _edata[];
extern uint32_t _sbss[];
extern uint32_t _ebss[];
extern uint32_t _estack[];

int main(void);
void nndsl_done(void);
void Reset_Handler(void);
void Default_Handler(void);

/* Coprocessor Access Control Register: CP10 and CP11 (the FPU) full access. */
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_FPU_FULL_ACCESS (0xFu << 20)

void Default_Handler(void)
{
    for (;;) {
        __asm volatile("bkpt #1");
    }
}

/* Plain word loops (not memcpy/memset): the image needs no C library start-up. */
void Reset_Handler(void)
{
    const uint32_t *src = _sidata;
    uint32_t *dst;
    for (dst = _sdata; dst < _edata; ++dst) {
        *dst = *src++;
    }
    for (dst = _sbss; dst < _ebss; ++dst) {
        *dst = 0u;
    }
    CPACR |= CPACR_FPU_FULL_ACCESS;
    __asm volatile("dsb\n\tisb" ::: "memory");
    (void)main();
    nndsl_done();
}

/* The first entries of the vector table: the initial stack pointer, then reset,
   NMI, HardFault, MemManage, BusFault and UsageFault. */
struct nndsl_vector_table {
    uint32_t *initial_sp;
    void (*handlers[6])(void);
};

__attribute__((section(".isr_vector"), used))
const struct nndsl_vector_table nndsl_vectors = {
    _estack,
    {Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler},
};
