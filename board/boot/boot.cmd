# Hearth A/B boot script: RAUC's U-Boot convention (BOOT_ORDER, BOOT_A_LEFT, BOOT_B_LEFT), kept in a raw
# boot-state partition instead of U-Boot's own environment. scripts/build-image prepends the board's settings
# (hearth_console, hearth_bootstate_part, hearth_slot_a_part, hearth_slot_b_part, hearth_boot, hearth_dtb) and
# compiles this with mkimage into boot.scr on the boot partition. Measured on Debian's u-boot-qemu 2023.01
# (docs: ../shared/research/uboot-ab.md in the project notes; DESIGN.md "Firmware image and update").
#
# From the environment: devtype/devnum name the boot disk (distro_bootcmd sets them when it finds this script;
# scripts/run-qemu's pre-seeded env sets virtio 0), hearth_args adds kernel command-line words (run-qemu
# --append; empty on boards).
#
# Boot state: two copies of 16 KiB at byte 0 and 0x4000 of the partition, each in U-Boot's env format
# (u32le CRC-32 of the rest, key=value NUL-separated, a final NUL, zero padding). Copy 1 if its CRC holds, else
# copy 2, else the defaults. Both copies are rewritten before every try (copy 1 first). Only the variables in
# bs_vars survive (Hearth's HEARTH_UPDATE among them: firmware/src/update/bootstate.rs lists them).
#
# Each slot (ext4) holds /boot/vmlinuz, /boot/initrd.img, /boot/dtb where the board has one, and
# /boot/slot.env: text `slot_args=...` lines (kernel command-line words the slot carries, e.g. test hooks).
# A slot whose files do not load loses its tries and the next one is tried in the same boot; when every slot
# is spent the first slot of BOOT_ORDER gets 3 tries again and boots (a box never stops trying).
# Counters stay at 9 or less: setexpr prints hex, test -gt reads decimal.
setenv bs_size 0x4000
setenv bs_blks 0x20
setenv bs_vars "BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT HEARTH_UPDATE"
setenv bs_addr ${ramdisk_addr_r}
part start ${devtype} ${devnum} ${hearth_bootstate_part} bs_blk1
setexpr bs_blk2 ${bs_blk1} + ${bs_blks}
if ${devtype} read ${bs_addr} ${bs_blk1} ${bs_blks} && env import -c ${bs_addr} ${bs_size} ${bs_vars}; then
  echo "bootstate: copy 1"
elif ${devtype} read ${bs_addr} ${bs_blk2} ${bs_blks} && env import -c ${bs_addr} ${bs_size} ${bs_vars}; then
  echo "bootstate: copy 2"
else
  echo "bootstate: no valid copy, using the defaults"
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv bs_save 'env export -c -s ${bs_size} ${bs_addr} ${bs_vars}; ${devtype} write ${bs_addr} ${bs_blk1} ${bs_blks}; ${devtype} write ${bs_addr} ${bs_blk2} ${bs_blks}'
# Load slot ${slot} from ${slotpart}; sets slot_ok=1 when kernel and initramfs (and dtb) are in memory.
setenv slot_load 'setenv slot_ok; setenv slot_args; if load ${devtype} ${devnum}:${slotpart} ${ramdisk_addr_r} /boot/slot.env; then env import -t ${ramdisk_addr_r} ${filesize} slot_args; fi; setenv fdt ${fdt_addr}; if test -n "${hearth_dtb}"; then setenv fdt ${fdt_addr_r}; load ${devtype} ${devnum}:${slotpart} ${fdt_addr_r} /boot/dtb || setenv fdt; fi; if test -n "${fdt}" && load ${devtype} ${devnum}:${slotpart} ${kernel_addr_r} /boot/vmlinuz && load ${devtype} ${devnum}:${slotpart} ${ramdisk_addr_r} /boot/initrd.img; then setenv slot_ok 1; fi'
# Try each slot of BOOT_ORDER with tries left; spend the try (saved) before loading.
setenv slot_ok
for BOOT_SLOT in ${BOOT_ORDER}; do
  if test -n "${slot_ok}"; then
    true
  elif test "${BOOT_SLOT}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
    setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
    setenv slot A; setenv slotpart ${hearth_slot_a_part}
    run bs_save; run slot_load
    test -n "${slot_ok}" || setenv BOOT_A_LEFT 0
  elif test "${BOOT_SLOT}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
    setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
    setenv slot B; setenv slotpart ${hearth_slot_b_part}
    run bs_save; run slot_load
    test -n "${slot_ok}" || setenv BOOT_B_LEFT 0
  fi
done
# Every slot spent: the first slot of BOOT_ORDER gets its tries back (this one spent), the other stays spent:
# it may be half-written or known bad, and only Hearth gives a slot tries (when it installs into it).
if test -z "${slot_ok}"; then
  setenv slot_first
  for BOOT_SLOT in ${BOOT_ORDER}; do
    test -n "${slot_first}" || setenv slot_first ${BOOT_SLOT}
  done
  echo "bootstate: no slot has tries left; slot ${slot_first} gets 3 again"
  if test "${slot_first}" = "B"; then
    setenv BOOT_B_LEFT 2; setenv slot B; setenv slotpart ${hearth_slot_b_part}
  else
    setenv BOOT_A_LEFT 2; setenv slot A; setenv slotpart ${hearth_slot_a_part}
  fi
  run bs_save; run slot_load
fi
if test -z "${slot_ok}"; then
  echo "no slot could be loaded; resetting"
  run bs_save
  reset
fi
echo "Booting slot ${slot} (A_LEFT=${BOOT_A_LEFT} B_LEFT=${BOOT_B_LEFT} ORDER=${BOOT_ORDER})"
setenv bootargs "console=${hearth_console} panic=5 loglevel=4 rauc.slot=${slot} ${slot_args} ${hearth_args}"
${hearth_boot} ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdt}
echo "slot ${slot}: ${hearth_boot} failed; resetting"
reset
