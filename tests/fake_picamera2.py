"""The source of a stand-in picamera2 package (its interface as benchmarks.imx500_on_pi uses it),
written into a folder by the test that imports it: the camera reports DNN runtimes of 800, 810,
... 860 us in turn."""
PICAMERA2 = '''
import struct


class Picamera2:
    def __init__(self, camera_num=0):
        self.frame = 0

    def create_preview_configuration(self, **settings):
        return settings

    def start(self, config):
        pass

    def stop(self):
        pass

    def capture_metadata(self):
        self.frame += 1
        return {"CnnKpiInfo": struct.pack("II", 800 + 10 * (self.frame % 7), 150 + self.frame % 3),
                "SensorTimestamp": self.frame * 33_333_333}
'''
DEVICES = '''
import struct


class IMX500:
    def __init__(self, network_file):
        self.camera_num = 0

    @staticmethod
    def get_kpi_info(metadata):
        dnn, dsp = struct.unpack("II", metadata["CnnKpiInfo"])
        return dnn / 1000, dsp / 1000
'''
