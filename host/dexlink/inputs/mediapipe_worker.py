"""The webcam hand tracker: MediaPipe Hands in its own environment, sending frames to dexlink.

Run by `dexlink teleop --input camera` with the Python of the MediaPipe environment (`make
mediapipe-env`): mediapipe 0.10.21 carries its hand models in the wheel (newer ones fetch
them at run time) and needs numpy < 2, so it cannot share dexlink's environment. This file
imports nothing from dexlink; it sends dexlink's generic hand-frame JSON over UDP:
{"side", "seq", "latency_ms", "landmarks21"} per detected hand.

"landmarks21" are MediaPipe's world landmarks: metres, about the hand's centre (the
camera cannot see where the wrist is in the room, only the hand's shape). MediaPipe names
the hand as if the image were a mirror (a selfie); this camera image is not mirrored, so
the name is swapped.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import time

NO_SOURCE = 3  # exit status: the camera or video would not open (MediaPipe itself loaded)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    p.add_argument("--video", help="read this video file instead of a camera")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="dexlink's UDP port")
    p.add_argument("--max-hands", type=int, default=1)
    p.add_argument("--mirrored", action="store_true", help="the camera already mirrors its image")
    p.add_argument("--frames", type=int, default=0, help="stop after N camera frames (0: never)")
    args = p.parse_args(argv)

    import cv2
    import mediapipe as mp

    capture = cv2.VideoCapture(args.video if args.video else args.camera)
    if not capture.isOpened():
        print("mediapipe_worker: cannot open %s" % (args.video or "camera %d" % args.camera),
              file=sys.stderr)
        return NO_SOURCE
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=args.max_hands,
                                     model_complexity=0, min_detection_confidence=0.5,
                                     min_tracking_confidence=0.5)
    seq = 0
    frames = 0
    print("mediapipe_worker: tracking, sending to udp://%s:%d" % (args.host, args.port), flush=True)
    try:
        while True:
            ok, image = capture.read()
            captured = time.monotonic()
            if not ok:
                break
            frames += 1
            result = hands.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            for world, handed in zip(result.multi_hand_world_landmarks or [],
                                     result.multi_handedness or []):
                label = handed.classification[0].label.lower()
                if not args.mirrored:
                    label = "left" if label == "right" else "right"
                seq += 1
                message = {"side": label, "seq": seq,
                           "latency_ms": (time.monotonic() - captured) * 1e3,
                           "landmarks21": [[lm.x, lm.y, lm.z] for lm in world.landmark]}
                sock.sendto(json.dumps(message).encode(), (args.host, args.port))
            if args.frames and frames >= args.frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        hands.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
