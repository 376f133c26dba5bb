"""mobilekd.models"""
