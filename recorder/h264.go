package recorder

// H.264 access units are recorded in Annex B form: each NAL unit after a
// 00 00 01 or 00 00 00 01 start code. Export needs two things from them:
// whether an access unit carries the sequence parameter set a decoder
// starts from, and the picture size that set gives.

// h264NALs calls fn with each NAL unit of the Annex B access unit au
// (without its start code) until fn returns false.
func h264NALs(au []byte, fn func(nal []byte) bool) {
	start := -1
	for i := 0; i+2 < len(au); i++ {
		if au[i] != 0 || au[i+1] != 0 || au[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			for end > start && au[end-1] == 0 { // a 4-byte start code's zero, or trailing zeros
				end--
			}
			if !fn(au[start:end]) {
				return
			}
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(au) {
		fn(au[start:])
	}
}

// h264KeySize returns the picture size of the first sequence parameter
// set in au; ok is false when au has none, or one this cannot read.
func h264KeySize(au []byte) (width, height int, ok bool) {
	h264NALs(au, func(nal []byte) bool {
		if len(nal) > 1 && nal[0]&0x1f == 7 {
			width, height, ok = h264SPSSize(nal[1:])
			return false
		}
		return true
	})
	return width, height, ok
}

// h264SPSSize reads the picture size from a sequence parameter set's RBSP
// (H.264 section 7.3.2.1.1), after the NAL header byte.
func h264SPSSize(sps []byte) (int, int, bool) {
	br := &bitReader{b: unescapeRBSP(sps)}
	profile := br.bits(8)
	br.bits(16) // constraint flags, reserved bits, level_idc
	br.ue()     // seq_parameter_set_id
	chroma := uint64(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		if chroma = br.ue(); chroma == 3 {
			br.bits(1) // separate_colour_plane_flag
		}
		br.ue()              // bit_depth_luma_minus8
		br.ue()              // bit_depth_chroma_minus8
		br.bits(1)           // qpprime_y_zero_transform_bypass_flag
		if br.bits(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if br.bits(1) == 1 { // seq_scaling_list_present_flag
					size := 16
					if i >= 6 {
						size = 64
					}
					last, next := int64(8), int64(8)
					for range size {
						if next != 0 {
							next = (last + br.se() + 256) % 256
						}
						if next != 0 {
							last = next
						}
					}
				}
			}
		}
	}
	br.ue()          // log2_max_frame_num_minus4
	switch br.ue() { // pic_order_cnt_type
	case 0:
		br.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		br.bits(1) // delta_pic_order_always_zero_flag
		br.se()    // offset_for_non_ref_pic
		br.se()    // offset_for_top_to_bottom_field
		n := br.ue()
		if n > 255 {
			return 0, 0, false
		}
		for range n {
			br.se()
		}
	}
	br.ue()    // max_num_ref_frames
	br.bits(1) // gaps_in_frame_num_value_allowed_flag
	wMBs := br.ue() + 1
	hUnits := br.ue() + 1
	frameMBsOnly := br.bits(1)
	if frameMBsOnly == 0 {
		br.bits(1) // mb_adaptive_frame_field_flag
	}
	br.bits(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint64
	if br.bits(1) == 1 { // frame_cropping_flag
		cl, cr, ct, cb = br.ue(), br.ue(), br.ue(), br.ue()
	}
	if br.err || wMBs > 1<<12 || hUnits > 1<<12 {
		return 0, 0, false
	}
	// Crop units (section 7.4.2.1.1): 4:2:0 halves both ways, 4:2:2
	// across; 4:4:4 and monochrome crop in samples.
	cx, cy := uint64(1), 2-frameMBsOnly
	switch chroma {
	case 1:
		cx, cy = 2, 2*(2-frameMBsOnly)
	case 2:
		cx = 2
	}
	w := wMBs * 16
	h := (2 - frameMBsOnly) * hUnits * 16
	if (cl+cr)*cx >= w || (ct+cb)*cy >= h {
		return 0, 0, false
	}
	return int(w - (cl+cr)*cx), int(h - (ct+cb)*cy), true
}

// unescapeRBSP removes the emulation prevention bytes (the 03 of each
// 00 00 03) from a NAL unit's payload.
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads big-endian bit fields and Exp-Golomb codes; reading past
// the end sets err and returns zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err bool
}

func (r *bitReader) bits(n int) uint64 {
	var v uint64
	for range n {
		if r.pos >= 8*len(r.b) {
			r.err = true
			return 0
		}
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

// ue reads an unsigned Exp-Golomb code (section 9.1).
func (r *bitReader) ue() uint64 {
	zeros := 0
	for r.bits(1) == 0 {
		if r.err || zeros == 32 {
			r.err = true
			return 0
		}
		zeros++
	}
	return 1<<zeros - 1 + r.bits(zeros)
}

// se reads a signed Exp-Golomb code.
func (r *bitReader) se() int64 {
	k := r.ue()
	if k&1 == 1 {
		return int64(k+1) / 2
	}
	return -int64(k / 2)
}
