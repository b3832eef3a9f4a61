package tray

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/png"
)

// icoFromPNG wraps one PNG image in an .ico file (Windows Vista and later read PNG
// entries): a 6-byte ICONDIR, one 16-byte ICONDIRENTRY, then the PNG as it is. Errors: the
// data is not a PNG, or it is wider or taller than 256 pixels, which .ico cannot say.
func icoFromPNG(data []byte) ([]byte, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("icon: %w", err)
	}
	if cfg.Width > 256 || cfg.Height > 256 || cfg.Width < 1 || cfg.Height < 1 {
		return nil, fmt.Errorf("icon: %dx%d pixels; .ico holds 1 to 256", cfg.Width, cfg.Height)
	}
	side := func(n int) uint8 { return uint8(n % 256) } // 256 is written as 0
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, struct {
		Reserved, Type, Count uint16
	}{0, 1, 1})
	binary.Write(&out, binary.LittleEndian, struct {
		Width, Height, Colors, Reserved uint8
		Planes, BitCount                uint16
		Size, Offset                    uint32
	}{side(cfg.Width), side(cfg.Height), 0, 0, 1, 32, uint32(len(data)), 6 + 16})
	out.Write(data)
	return out.Bytes(), nil
}
