"""mobilekd.distill"""
