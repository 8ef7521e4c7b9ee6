"""SyncNet-SynConv: a SyncNet-style lip-sync expert trained on SynConv, for the SyncScore
metrics LSE-C / LSE-D (design.md section 8)."""

from infp_lab.syncnet.crops import mouth_crops
from infp_lab.syncnet.model import PRESETS, SyncNet, SyncNetConfig, SyncOutput, preset
from infp_lab.syncnet.score import SyncScores, embed_clip, score_crops, sync_scores
from infp_lab.syncnet.train import SyncNetTrainConfig, train_syncnet

__all__ = ["mouth_crops", "PRESETS", "SyncNet", "SyncNetConfig", "SyncOutput", "preset", "SyncScores",
           "embed_clip", "score_crops", "sync_scores", "SyncNetTrainConfig", "train_syncnet"]
