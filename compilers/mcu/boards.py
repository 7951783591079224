"""The microcontroller boards a report checks the model against: each board's RAM and flash from
its maker's datasheet or product files (cited in ``citations``), and which memory region counts.

The tensor arena is one contiguous buffer, so the RAM that counts is the largest region a TFLite
Micro build can give it, not a board's total; ``model_in_ram`` says whether the model's bytes sit
in that same RAM (a board that runs its program from SRAM, or loads the model from a file system)
instead of in flash."""
import dataclasses
import typing

from zoo.errors import UsageError

KIB, MIB = 1024, 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Board:
    key: str
    name: str
    ram_bytes: int
    ram_region: str       # which RAM counts for the arena, and why
    flash_bytes: int
    flash_region: str
    model_in_ram: bool    # the model's bytes take RAM from the same region as the arena
    citations: typing.Tuple[str, ...]
    ram_max_bytes: typing.Optional[int] = None  # the region's size at its largest setting, if configurable


BOARDS: typing.Dict[str, Board] = {board.key: board for board in (
    Board(
        "spresense", "Sony Spresense (CXD5602, 6x Cortex-M4F at 156 MHz; main core, Arduino)",
        768 * KIB,
        "the main core's application memory: 768 KB by default of the CXD5602's 1.5 MB SRAM (Arduino "
        "Tools > Memory raises it up to 1536 KB); the program runs from this SRAM, so the model array "
        "shares it with the arena",
        8 * MIB, "8 MB SPI flash on the main board (holds the program image loaded into SRAM)", True,
        ("Sony, Spresense hardware documentation, https://developer.sony.com/spresense/development-guides/"
         "hw_docs_en.html (CXD5602: 1.5 MB SRAM; main board: 8 MB flash)",
         "Sony, spresense-arduino-compatible boards.txt, https://github.com/sonydevworld/spresense-arduino-"
         "compatible/blob/master/Arduino15/packages/SPRESENSE/hardware/spresense/1.0.0/boards.txt (Memory: "
         "768 KB default, 128 to 1536 KB; upload.maximum_size = upload.maximum_data_size = 786432)"),
        ram_max_bytes=1536 * KIB),
    Board(
        "coral_micro", "Coral Dev Board Micro (NXP i.MX RT1176, Cortex-M7 at 800 MHz)",
        64 * MIB,
        "64 MB SDRAM, where coralmicro's STATIC_TENSOR_ARENA_IN_SDRAM puts the arena (its on-chip OCRAM "
        "holds at most 1.25 MB); coralmicro reads the model from the flash file system into RAM",
        128 * MIB, "128 MiB NAND flash (LittleFS file system holding the model)", True,
        ("Google, Coral Dev Board Micro datasheet v1.0, https://coral.ai/static/files/Coral-Dev-Board-Micro-"
         "datasheet.pdf (64 MB SDRAM, 128 MiB NAND flash)",
         "google-coral/coralmicro, libs/tensorflow/utils.h, https://github.com/google-coral/coralmicro/blob/"
         "main/libs/tensorflow/utils.h (STATIC_TENSOR_ARENA_IN_SDRAM; OCRAM: max of 1.25 MB)")),
    Board(
        "nano33_ble_sense", "Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F at 64 MHz)",
        256 * KIB, "the nRF52840's 256 KB SRAM (shared with Mbed OS and the BLE stack)",
        1 * MIB, "the nRF52840's 1 MB on-chip flash (the model array stays there)", False,
        ("Arduino, Nano 33 BLE Sense tech specs (ABX00031), "
         "https://docs.arduino.cc/hardware/nano-33-ble-sense/ (nRF52840: 256 KB SRAM, 1MB flash)",)),
    Board(
        "esp32s3", "Espressif ESP32-S3-DevKitC-1-N8R8 (ESP32-S3, 2x Xtensa LX7)",
        512 * KIB,
        "the ESP32-S3's 512 KB internal SRAM (also holds IRAM code); the board's 8 MB octal PSRAM can take a "
        "larger arena at lower speed",
        8 * MIB, "the module's 8 MB quad SPI flash (the model is read in place, memory-mapped)", False,
        ("Espressif, ESP32-S3 Series Datasheet, https://www.espressif.com/sites/default/files/documentation/"
         "esp32-s3_datasheet_en.pdf (384 KB ROM, 512 KB SRAM)",
         "Espressif, ESP32-S3-DevKitC-1 v1.1 user guide, https://docs.espressif.com/projects/esp-idf/en/"
         "v5.2.2/esp32s3/hw-reference/esp32s3/user-guide-devkitc-1.html (N8R8: 8 MB flash, 8 MB PSRAM)")),
    Board(
        "stm32h7", "ST NUCLEO-H743ZI2 (STM32H743ZI, Cortex-M7)",
        512 * KIB,
        "the 512 KB AXI SRAM, the largest contiguous block of the STM32H743's 1 MB RAM (the rest is split "
        "into SRAM1-3, SRAM4 and the 128 KB DTCM), since the arena is one buffer",
        2 * MIB, "the STM32H743ZI's 2 MB on-chip flash (the model array stays there)", False,
        ("ST, STM32H743 product page, http://www.st.com/en/microcontrollers/stm32h7x3.html (2 MB flash, "
         "1 MB RAM)",
         "ST, RM0433 reference manual, https://www.st.com/resource/en/reference_manual/dm00314099-stm32h743-"
         "stm32h753-stm32h750-value-line-and-stm32h742-stm32h745-stm32h755-stm32h747-stm32h757-advanced-"
         "armbased-32bit-mcus-stmicroelectronics.pdf (memory map), as transcribed in stm32-rs/stm32h7xx-hal "
         "memory.x, https://github.com/stm32-rs/stm32h7xx-hal/blob/master/memory.x (FLASH 2M, AXISRAM "
         "512K at 0x24000000, SRAM1 128K, SRAM2 128K, SRAM3 32K, SRAM4 64K, DTCM 128K)")),
)}
# The board of the papers this zoo follows: TinyTrackerS was measured on the Spresense (arXiv
# 2308.12313), and TinyTracker's paper compares the IMX500 with the Coral Dev Micro and the Spresense.
DEFAULT_BOARD = "spresense"


@dataclasses.dataclass
class BoardFit:
    """Whether the model fits one board: ``ram_needed_bytes`` is the arena, plus the model where the
    board keeps it in the same RAM; ``flash_needed_bytes`` the model. The application's own code,
    stack and buffers come on top of both. ``fits_at_max``: whether it fits with the RAM setting at
    its largest, for a board where that is configurable (else None)."""
    board: str
    name: str
    ram_bytes: int
    ram_region: str
    flash_bytes: int
    flash_region: str
    ram_needed_bytes: int
    flash_needed_bytes: int
    fits: bool
    fits_at_max: typing.Optional[bool]
    citations: typing.List[str]


def get(key: str) -> Board:
    """The board called ``key``; UsageError listing the boards otherwise."""
    try:
        return BOARDS[key]
    except KeyError:
        raise UsageError(f"--board {key}: unknown board; choose one of {', '.join(BOARDS)}") from None


def fit(board: Board, arena_bytes: int, model_bytes: int) -> BoardFit:
    """The fit of a model with a measured ``arena_bytes`` and a file of ``model_bytes`` on ``board``."""
    ram_needed = arena_bytes + (model_bytes if board.model_in_ram else 0)
    flash_fits = model_bytes <= board.flash_bytes
    at_max = None if board.ram_max_bytes is None else ram_needed <= board.ram_max_bytes and flash_fits
    return BoardFit(board=board.key, name=board.name, ram_bytes=board.ram_bytes, ram_region=board.ram_region,
                    flash_bytes=board.flash_bytes, flash_region=board.flash_region,
                    ram_needed_bytes=ram_needed, flash_needed_bytes=model_bytes,
                    fits=ram_needed <= board.ram_bytes and flash_fits, fits_at_max=at_max,
                    citations=list(board.citations))
